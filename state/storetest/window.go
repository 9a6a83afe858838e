package storetest

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/state"
)

// TestWindowStore runs the window store suite against the stores open
// returns. open is called once per subtest and must return an empty store
// with the given options.
func TestWindowStore(t *testing.T, open func(t *testing.T, opts state.WindowOptions) state.WindowStore) {
	// Small segments: retention 100ms in segments of 50ms.
	opts := state.WindowOptions{Retention: 100 * time.Millisecond, SegmentInterval: 50 * time.Millisecond}
	t.Run("PutFetch", func(t *testing.T) { winPutFetch(t, open(t, opts)) })
	t.Run("Ranges", func(t *testing.T) { winRanges(t, open(t, opts)) })
	t.Run("Retention", func(t *testing.T) { winRetention(t, open(t, opts)) })
	t.Run("Duplicates", func(t *testing.T) {
		o := opts
		o.RetainDuplicates = true
		winDuplicates(t, open(t, o))
	})
	t.Run("Changelog", func(t *testing.T) { winChangelog(t, open(t, opts)) })
}

func fetch(t *testing.T, s state.WindowStore, key string, start int64) []byte {
	t.Helper()
	v, err := s.Fetch([]byte(key), start)
	Must(t, err)
	return v
}

func winPutFetch(t *testing.T, s state.WindowStore) {
	if v := fetch(t, s, "a", 0); v != nil {
		t.Fatalf("Fetch of missing window = %q", v)
	}
	Must(t, s.Put([]byte("a"), 10, []byte("1")))
	Must(t, s.Put([]byte("a"), 10, []byte("2")))
	Must(t, s.Put([]byte("a"), 20, []byte{}))
	if v := fetch(t, s, "a", 10); string(v) != "2" {
		t.Fatalf("Fetch = %q, want 2", v)
	}
	if v := fetch(t, s, "a", 20); v == nil || len(v) != 0 {
		t.Fatalf("Fetch of empty value = %#v", v)
	}
	if v := fetch(t, s, "a", 11); v != nil {
		t.Fatalf("Fetch of other start = %q", v)
	}
	Must(t, s.Put([]byte("a"), 10, nil))
	if v := fetch(t, s, "a", 10); v != nil {
		t.Fatalf("Fetch after Put(nil) = %q", v)
	}
	Must(t, s.Flush())
}

// windowKeys trip encodings that do not keep the byte order of keys of
// different lengths.
var windowKeys = []string{"", "\x00", "a", "a\x00", "a\x00\x00", "a\x01", "ab", "\xff", "\xff\xff"}

func winRanges(t *testing.T, s state.WindowStore) {
	var all []Window
	times := []int64{0, 30, 49, 50, 99, 140}
	for i, k := range slices.Backward(windowKeys) {
		for j, ts := range slices.Backward(times) {
			v := string(rune('A'+i)) + string(rune('a'+j))
			Must(t, s.Put([]byte(k), ts, []byte(v)))
			all = append(all, Window{k, ts, v})
		}
	}
	slices.SortFunc(all, func(a, b Window) int {
		if c := bytes.Compare([]byte(a.Key), []byte(b.Key)); c != 0 {
			return c
		}
		return int(a.Start - b.Start)
	})
	model := func(kf, kt *string, tf, tt int64) []Window {
		var out []Window
		for _, w := range all {
			if (kf == nil || w.Key >= *kf) && (kt == nil || w.Key <= *kt) && w.Start >= tf && w.Start <= tt {
				out = append(out, w)
			}
		}
		return out
	}
	timeBounds := [][2]int64{{math.MinInt64, math.MaxInt64}, {0, 0}, {0, 49}, {30, 50}, {50, 50}, {49, 99}, {100, 139}, {51, 30}, {141, 1000}}
	for _, tb := range timeBounds {
		for _, k := range append(windowKeys, "a\x00\x01", "zz") {
			want := model(&k, &k, tb[0], tb[1])
			got, err := ReadWindows(s.FetchRange([]byte(k), tb[0], tb[1]))
			Must(t, err)
			if !slices.Equal(got, want) {
				t.Errorf("FetchRange(%q, %d, %d) = %v, want %v", k, tb[0], tb[1], got, want)
			}
		}
		keyBounds := []*string{nil, ptr(""), ptr("a"), ptr("a\x00"), ptr("a\x00\x00\x00"), ptr("b"), ptr("\xff")}
		for _, kf := range keyBounds {
			for _, kt := range keyBounds {
				want := model(kf, kt, tb[0], tb[1])
				got, err := ReadWindows(s.FetchKeyRange(bound(kf), bound(kt), tb[0], tb[1]))
				Must(t, err)
				if !slices.Equal(got, want) {
					t.Errorf("FetchKeyRange(%q, %q, %d, %d) = %v, want %v", bound(kf), bound(kt), tb[0], tb[1], got, want)
				}
			}
		}
		got, err := ReadWindows(s.FetchAll(tb[0], tb[1]))
		Must(t, err)
		if want := model(nil, nil, tb[0], tb[1]); !slices.Equal(got, want) {
			t.Errorf("FetchAll(%d, %d) = %v, want %v", tb[0], tb[1], got, want)
		}
	}
	got, err := ReadWindows(s.All())
	Must(t, err)
	if !slices.Equal(got, all) {
		t.Errorf("All = %v, want %v", got, all)
	}
}

func winRetention(t *testing.T, s state.WindowStore) {
	_, r := logged(t, s)
	// Retention 100, segments of 50: segment n holds starts [50n, 50n+49].
	for _, ts := range []int64{0, 49, 50, 120} {
		Must(t, s.Put([]byte("k"), ts, []byte("v")))
	}
	// Observed 120: 120-100=20 is in segment 0, so everything is live.
	got, err := ReadWindows(s.All())
	Must(t, err)
	if len(got) != 4 {
		t.Fatalf("before expiry All = %v", got)
	}
	// Observed 160: 60 is in segment 1, so segment 0 (0 and 49) expires,
	// although 50 is older than 160-100 too: expiry is by whole segment.
	Must(t, s.Put([]byte("k"), 160, []byte("v")))
	got, err = ReadWindows(s.FetchAll(math.MinInt64, math.MaxInt64))
	Must(t, err)
	want := []Window{{"k", 50, "v"}, {"k", 120, "v"}, {"k", 160, "v"}}
	if !slices.Equal(got, want) {
		t.Fatalf("after expiry All = %v, want %v", got, want)
	}
	if v := fetch(t, s, "k", 0); v != nil {
		t.Fatalf("Fetch of expired window = %q", v)
	}
	// A put into an expired segment is dropped, and not logged.
	r.Take()
	Must(t, s.Put([]byte("k"), 10, []byte("late")))
	if v := fetch(t, s, "k", 10); v != nil {
		t.Fatalf("late put stored %q", v)
	}
	if c := r.Take(); len(c) != 0 {
		t.Fatalf("late put logged %v", c)
	}
	// Going back in time does not revive anything.
	Must(t, s.Put([]byte("k"), 100, []byte("v")))
	got, err = ReadWindows(s.FetchRange([]byte("k"), 0, 200))
	Must(t, err)
	want = []Window{{"k", 50, "v"}, {"k", 100, "v"}, {"k", 120, "v"}, {"k", 160, "v"}}
	if !slices.Equal(got, want) {
		t.Fatalf("FetchRange = %v, want %v", got, want)
	}
}

func winDuplicates(t *testing.T, s state.WindowStore) {
	_, r := logged(t, s)
	Must(t, s.Put([]byte("k"), 10, []byte("1")))
	Must(t, s.Put([]byte("k"), 10, []byte("2")))
	Must(t, s.Put([]byte("k"), 10, nil)) // ignored with duplicates
	Must(t, s.Put([]byte("k"), 5, []byte("0")))
	got, err := ReadWindows(s.FetchRange([]byte("k"), 0, 100))
	Must(t, err)
	want := []Window{{"k", 5, "0"}, {"k", 10, "1"}, {"k", 10, "2"}}
	if !slices.Equal(got, want) {
		t.Fatalf("FetchRange = %v, want %v", got, want)
	}
	if v := fetch(t, s, "k", 10); string(v) != "1" {
		t.Fatalf("Fetch = %q, want the first duplicate", v)
	}
	var seqs []uint32
	for _, c := range r.Take() {
		_, _, seq, err := state.ParseWindowChangelogKey(c.Key)
		Must(t, err)
		seqs = append(seqs, seq)
	}
	if len(seqs) != 3 || seqs[0] == seqs[1] || seqs[1] == seqs[2] || seqs[0] == seqs[2] {
		t.Fatalf("duplicate seqs %v, want 3 distinct", seqs)
	}
}

func winChangelog(t *testing.T, s state.WindowStore) {
	l, r := logged(t, s)
	Must(t, s.Put([]byte("ab"), 0x0102, []byte("v")))
	Must(t, s.Put([]byte("ab"), 0x0102, nil))
	want := []Change{
		{[]byte("ab\x00\x00\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00"), []byte("v"), 100},
		{[]byte("ab\x00\x00\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00"), nil, 101},
	}
	if got := r.Take(); !changesEqual(got, want) {
		t.Fatalf("logged %v, want %v", got, want)
	}

	Must(t, l.Restore(state.WindowChangelogKey([]byte("r"), 40, 0), []byte("restored")))
	Must(t, l.Restore(state.WindowChangelogKey([]byte("r"), 1000, 0), []byte("late")))
	if got := r.Take(); len(got) != 0 {
		t.Fatalf("Restore logged %v", got)
	}
	if v := fetch(t, s, "r", 1000); string(v) != "late" {
		t.Fatalf("restored window = %q", v)
	}
	// Restoring advanced observed stream time to 1000: 40 expired.
	if v := fetch(t, s, "r", 40); v != nil {
		t.Fatalf("restored window outlived retention: %q", v)
	}
	Must(t, l.Restore(state.WindowChangelogKey([]byte("r"), 1000, 0), nil))
	if v := fetch(t, s, "r", 1000); v != nil {
		t.Fatalf("restored tombstone left %q", v)
	}
	if err := l.Restore([]byte("short"), nil); err == nil {
		t.Fatal("Restore of a short key succeeded")
	}
	k, start, seq, err := state.ParseWindowChangelogKey(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64([]byte("key"), uint64(7)), 9))
	if err != nil || string(k) != "key" || start != 7 || seq != 9 {
		t.Fatalf("ParseWindowChangelogKey = %q %d %d %v", k, start, seq, err)
	}
}
