package state_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/state"
)

func TestSegmentID(t *testing.T) {
	for _, c := range []struct{ t, interval, want int64 }{
		{0, 50, 0}, {49, 50, 0}, {50, 50, 1}, {-1, 50, -1}, {-50, 50, -1}, {-51, 50, -2},
		{math.MinInt64, 50, math.MinInt64/50 - 1}, {math.MaxInt64, 50, math.MaxInt64 / 50},
	} {
		if got := state.SegmentID(c.t, c.interval); got != c.want {
			t.Errorf("SegmentID(%d, %d) = %d, want %d", c.t, c.interval, got, c.want)
		}
	}
	r, i := 100*time.Millisecond, 50*time.Millisecond
	if got := state.MinLiveSegment(160, r, i); got != 1 {
		t.Errorf("MinLiveSegment(160) = %d, want 1", got)
	}
	if got := state.MinLiveSegment(state.NoObservedTime, r, i); got != state.SegmentID(math.MinInt64, 50) {
		t.Errorf("MinLiveSegment(none) = %d", got)
	}
}

func TestOptions(t *testing.T) {
	o := state.WindowOptions{}.EnsureDefaults()
	if o.Retention != 24*time.Hour || o.SegmentInterval != 12*time.Hour {
		t.Errorf("defaults: %s", o)
	}
	if s := (state.SessionOptions{Retention: time.Minute}).EnsureDefaults(); s.SegmentInterval != time.Minute {
		t.Errorf("segment interval floor: %s", s)
	}
	err := state.WindowOptions{Retention: -1, SegmentInterval: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "retention") || !strings.Contains(err.Error(), "segment interval") {
		t.Errorf("Validate should report both problems: %v", err)
	}
}

func TestChangelogKeys(t *testing.T) {
	k, start, seq, err := state.ParseWindowChangelogKey(state.WindowChangelogKey([]byte("key"), -5, 3))
	if err != nil || string(k) != "key" || start != -5 || seq != 3 {
		t.Errorf("window round trip: %q %d %d %v", k, start, seq, err)
	}
	k, start, end, err := state.ParseSessionChangelogKey(state.SessionChangelogKey(nil, 1, 2))
	if err != nil || len(k) != 0 || start != 1 || end != 2 {
		t.Errorf("session round trip: %q %d %d %v", k, start, end, err)
	}
	if _, _, _, err := state.ParseWindowChangelogKey(make([]byte, 11)); !errors.Is(err, state.ErrCorruptChangelogKey) {
		t.Errorf("short window key: %v", err)
	}
	if _, _, _, err := state.ParseSessionChangelogKey(make([]byte, 15)); !errors.Is(err, state.ErrCorruptChangelogKey) {
		t.Errorf("short session key: %v", err)
	}
}
