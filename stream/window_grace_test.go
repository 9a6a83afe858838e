package stream_test

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
	"github.com/runnel-dev/runnel/topology"
)

// click is a record of key k at ts.
type click struct {
	k  string
	ts int64
}

// graceDriver builds a topology counting "clicks" with count, pipes the
// clicks and commits.
func graceDriver(t *testing.T, count func(stream.GroupedStream[string, string]), clicks ...click) *streamtest.Driver {
	t.Helper()
	b := stream.NewBuilder()
	count(stream.From(b, "clicks", serde.String, serde.String).GroupByKey())
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	in := streamtest.Input(d, "clicks", serde.String, serde.String)
	for _, c := range clicks {
		if err := in.Pipe(c.k, "click", c.ts); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestGraceBoundaries: a record is admitted exactly when a window it
// belongs to has not closed: for session windows, when its session ends at
// or after stream time − grace − gap (Kafka Streams' rule); for sliding
// windows, when its last window (ending at its time + size) ends at or
// after stream time − grace; for hopping windows, per window, while stream
// time is below the window's end + grace. Each case is checked at the
// bound and one ms on each side.
func TestGraceBoundaries(t *testing.T) {
	const streamTime = 1000
	t.Run("session", func(t *testing.T) {
		const gap, grace = 30, 10
		bound := int64(streamTime - grace - gap)
		for _, late := range []int64{bound - 1, bound, bound + 1} {
			d := graceDriver(t, func(g stream.GroupedStream[string, string]) {
				stream.SessionWindowedBy(g, stream.Sessions(gap*time.Millisecond, grace*time.Millisecond)).
					Count(stream.Materialized("sessions"))
			}, click{"now", streamTime}, click{"late", late})
			got, err := streamtest.Sessions(d, "sessions", serde.String, serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			_, admitted := got[streamtest.SessionKey[string]{Key: "late", Start: late, End: late}]
			checkAdmitted(t, d, fmt.Sprintf("record at %d (bound %d)", late, bound), admitted, late >= bound)
		}
	})
	t.Run("sliding", func(t *testing.T) {
		const size, grace = 10, 5
		sliding := func(g stream.GroupedStream[string, string]) {
			stream.SlidingWindowedBy(g, stream.Sliding(size*time.Millisecond, grace*time.Millisecond)).
				Count(stream.Materialized("sliding"))
		}
		// A record is dropped when every window it can be in, the last
		// one ending at its time + size, closed.
		bound := int64(streamTime - grace - size)
		for _, late := range []int64{bound - 1, bound, bound + 1} {
			d := graceDriver(t, sliding, click{"now", streamTime}, click{"late", late})
			dropped := d.Dropped()[topology.DropLate]
			if want := late < bound; (dropped == 1) != want {
				t.Errorf("record at %d (bound %d): dropped as late %d, want dropped %t", late, bound, dropped, want)
			}
		}
		// The window [970,980] of a record at 980 takes a record at 975
		// while it is open: until stream time passes its end + grace.
		const closesAt = 980 + grace + 1
		for _, now := range []int64{closesAt - 1, closesAt, closesAt + 1} {
			d := graceDriver(t, sliding, click{"late", 980}, click{"now", now}, click{"late", 975})
			got, err := streamtest.Windows(d, "sliding", serde.String, serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			n := got[streamtest.WindowKey[string]{Key: "late", Start: 970}]
			if want := int64(1) + b2i(now < closesAt); n != want {
				t.Errorf("stream time %d: window [970,980] counts %d, want %d (closes at %d)", now, n, want, closesAt)
			}
		}
	})
	t.Run("hopping", func(t *testing.T) {
		// The record at 95 is in [90,100) and [95,105); [90,100) closes
		// at stream time 100 + grace.
		const size, advance, grace, late = 10, 5, 2, 95
		const bound = 100 + grace
		for _, now := range []int64{bound - 1, bound, bound + 1} {
			d := graceDriver(t, func(g stream.GroupedStream[string, string]) {
				stream.WindowedBy(g, stream.Hopping(size*time.Millisecond, advance*time.Millisecond, grace*time.Millisecond)).
					Count(stream.Materialized("hopping"))
			}, click{"now", now}, click{"late", late})
			got, err := streamtest.Windows(d, "hopping", serde.String, serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			if got[streamtest.WindowKey[string]{Key: "late", Start: 95}] != 1 {
				t.Errorf("stream time %d: window [95,105) missing the record: %v", now, got)
			}
			_, admitted := got[streamtest.WindowKey[string]{Key: "late", Start: 90}]
			checkAdmitted(t, d, fmt.Sprintf("window [90,100) at stream time %d (closes at %d)", now, bound), admitted, now < bound)
		}
	})
}

func checkAdmitted(t *testing.T, d *streamtest.Driver, what string, admitted, want bool) {
	t.Helper()
	late := d.Dropped()[topology.DropLate]
	if admitted != want || (late == 0) != want {
		t.Errorf("%s: admitted %t (dropped as late: %d), want admitted %t", what, admitted, late, want)
	}
}

// TestSessionGraceIncludesGap is issue 19's session repro: gap 30 s,
// grace 10 s, clicks at 0 s, 35 s, then 1 s. The 1 s click's session ends
// within gap + grace of stream time, so it is admitted and merges with the
// 0 s session. Suppress emits a session once no record can extend it: when
// stream time passes its end + 2 × gap + grace (a record at end + gap is
// admitted until stream time passes end + gap + gap + grace).
func TestSessionGraceIncludesGap(t *testing.T) {
	b := stream.NewBuilder()
	clicks := stream.From(b, "clicks", serde.String, serde.String).GroupByKey()
	stream.SessionWindowedBy(clicks, stream.Sessions(30*time.Second, 10*time.Second)).
		Count(stream.Materialized("sessions")).Suppress(stream.UntilWindowCloses()).ToStream().To("final")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := streamtest.Input(d, "clicks", serde.String, serde.String)
	// 1 s + 30 s + 10 s = 41 s: stream time 41 s keeps the merged session
	// open.
	for _, s := range []int64{0, 35_000, 1_000, 41_000} {
		if err := in.Pipe("u", "click", s); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if late := d.Dropped()[topology.DropLate]; late != 0 {
		t.Fatalf("%d records dropped as late", late)
	}
	got, err := streamtest.Sessions(d, "sessions", serde.String, serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	want := map[streamtest.SessionKey[string]]int64{{Key: "u", Start: 0, End: 1_000}: 2, {Key: "u", Start: 35_000, End: 41_000}: 2}
	if !maps.Equal(got, want) {
		t.Fatalf("sessions %v, want %v", got, want)
	}
	if out := windowResults(t, d, "final"); len(out) != 0 {
		t.Fatalf("results before the session closed: %v", out)
	}
	for _, c := range []struct {
		ts   int64
		want []string
	}{
		{1_000 + 70_000, nil},
		{1_000 + 70_001, []string{"u@[0,1000)=2"}},
		{41_000 + 70_001, []string{"u@[0,1000)=2", "u@[35000,41000)=2"}},
	} {
		if err := in.Pipe("other", "click", c.ts); err != nil {
			t.Fatal(err)
		}
		if out := windowResults(t, d, "final"); fmt.Sprint(out) != fmt.Sprint(c.want) {
			t.Fatalf("stream time %d: final results %v, want %v", c.ts, out, c.want)
		}
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
