package stream_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
	"github.com/runnel-dev/runnel/topology"
)

type sessKey struct {
	key        string
	start, end int64
}

// refSession is one session of the reference computation.
type refSession struct {
	start, end int64
	sum        int64
}

// referenceSessions runs session windowing plainly: each record merges the
// sessions within gap of it, unless the merged session would end before
// stream time minus grace minus gap, in which case it is dropped. It returns the
// final sessions (sum of values) and the number of dropped records.
func referenceSessions(evs []sessEvent, gap, grace int64) (map[sessKey]int64, int64) {
	sessions := map[string][]refSession{}
	observed, dropped := int64(-1), int64(0)
	for _, e := range evs {
		observed = max(observed, e.ts)
		merged := refSession{e.ts, e.ts, e.v}
		var keep []refSession
		for _, s := range sessions[e.key] {
			if s.end >= e.ts-gap && s.start <= e.ts+gap {
				merged.start, merged.end, merged.sum = min(merged.start, s.start), max(merged.end, s.end), merged.sum+s.sum
			} else {
				keep = append(keep, s)
			}
		}
		if merged.end < observed-grace-gap {
			dropped++
			continue
		}
		sessions[e.key] = append(keep, merged)
	}
	out := map[sessKey]int64{}
	for k, ss := range sessions {
		for _, s := range ss {
			out[sessKey{k, s.start, s.end}] = s.sum
		}
	}
	return out, dropped
}

type sessEvent struct {
	key string
	ts  int64
	v   int64
}

// TestSessionWindows checks session windows with merging, late records and
// final results against the reference, with one and three partitions.
func TestSessionWindows(t *testing.T) {
	const gap, grace = 1_000, 2_000
	rng := rand.New(rand.NewPCG(5, 6))
	var evs []sessEvent
	now := int64(0)
	for range 600 {
		now += rng.Int64N(600)
		ts := now
		if rng.IntN(4) == 0 {
			ts = max(0, now-rng.Int64N(3*grace))
		}
		evs = append(evs, sessEvent{fmt.Sprint("k", rng.IntN(4)), ts, 1 + rng.Int64N(9)})
	}
	evs = append(evs, sessEvent{"end", now + 10*(gap+grace), 1})
	want, dropped := referenceSessions(evs, gap, grace)
	observed := now + 10*(gap+grace)
	closed := map[sessKey]int64{}
	for k, v := range want {
		if k.end+2*gap+grace < observed {
			closed[k] = v
		}
	}
	// One partition: stream time, which decides lateness, is per task.
	for _, parts := range []int{1} {
		t.Run(fmt.Sprint("partitions=", parts), func(t *testing.T) {
			b := stream.NewBuilder()
			sums := stream.SessionWindowedBy(stream.From(b, "events", serde.String, serde.Int64).GroupByKey(),
				stream.Sessions(gap*time.Millisecond, grace*time.Millisecond)).
				Reduce(func(a, v int64) int64 { return a + v }, stream.Materialized("sums"), stream.WithRetention(time.Hour))
			sums.ToStream().To("updates")
			sums.Suppress(stream.UntilWindowCloses()).ToStream().To("final")
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d, err := streamtest.New(topo, streamtest.DefaultPartitions(parts))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			in := streamtest.Input(d, "events", serde.String, serde.Int64)
			for _, e := range evs {
				if err := in.Pipe(e.key, e.v, e.ts); err != nil {
					t.Fatal(err)
				}
			}
			store, err := streamtest.Sessions(d, "sums", serde.String, serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			got := map[sessKey]int64{}
			for k, v := range store {
				got[sessKey{k.Key, k.Start, k.End}] = v
			}
			if !maps.Equal(got, want) {
				t.Errorf("store differs from reference: %s", testutil.MapDiff(got, want))
			}
			if n := d.Dropped()[topology.DropLate]; n != dropped || dropped == 0 {
				t.Errorf("dropped late = %d, want %d (> 0)", n, dropped)
			}
			ws := stream.WindowedSerde(serde.String)
			latest, err := streamtest.Latest(d, "updates", ws, serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			fromUpdates := map[sessKey]int64{}
			for k, v := range latest {
				fromUpdates[sessKey{k.Key, k.Start, k.End}] = v
			}
			if !maps.Equal(fromUpdates, want) {
				t.Errorf("updates (merged sessions deleted) differ from reference: %s", testutil.MapDiff(fromUpdates, want))
			}
			final, err := streamtest.Output(d, "final", ws, serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			emitted := map[sessKey]int64{}
			for _, r := range final {
				k := sessKey{r.Key.Key, r.Key.Start, r.Key.End}
				if _, dup := emitted[k]; dup || r.Tombstone {
					t.Errorf("session %v emitted twice or as a tombstone", k)
				}
				emitted[k] = r.Value
			}
			if !maps.Equal(emitted, closed) {
				t.Errorf("suppressed finals differ: %s", testutil.MapDiff(emitted, closed))
			}
		})
	}
}

// TestSessionAggregateMerger checks that SessionAggregate merges the
// aggregates of bridged sessions with the merger.
func TestSessionAggregateMerger(t *testing.T) {
	b := stream.NewBuilder()
	stream.SessionAggregate(stream.SessionWindowedBy(stream.From(b, "in", serde.String, serde.String).GroupByKey(),
		stream.Sessions(20*time.Millisecond, 0)),
		func() []string { return nil },
		func(_ string, v string, agg []string) []string { return append(agg, v) },
		func(_ string, a, b []string) []string { return slices.Sorted(slices.Values(append(a, b...))) },
		// Retained long enough for c to find the session of b (with the
		// default gap + grace it would have expired: TestSessionExpiredNotMerged).
		stream.Materialized("lists"), stream.WithRetention(time.Second)).ToStream().To("out", stream.WithSerdes(stream.WindowedSerde(serde.String), serde.JSON[[]string]()))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := streamtest.Input(d, "in", serde.String, serde.String)
	for _, e := range []struct {
		v  string
		ts int64
	}{{"b", 0}, {"a", 30}, {"c", 15}, {"d", 31}} {
		if err := in.Pipe("k", e.v, e.ts); err != nil {
			t.Fatal(err)
		}
	}
	out, err := streamtest.Output(d, "out", stream.WindowedSerde(serde.String), serde.JSON[[]string]())
	if err != nil {
		t.Fatal(err)
	}
	want := "[k@[0,0)=[b]@0 k@[30,30)=[a]@30 k@[0,0)=<tombstone>@0 k@[30,30)=<tombstone>@30 k@[0,30)=[a b c]@30 k@[0,30)=<tombstone>@30 k@[0,31)=[a b c d]@31]"
	if got := fmt.Sprint(out); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestSessionExpiredNotMerged: a session the store has expired — its end
// at or before the latest session end put minus the retention (gap +
// grace by default) — is found by no later record, whatever the store's
// segments still hold, as in Kafka Streams' stores: a record within gap
// of it starts a session of its own. One ms later the session is still
// there and the record merges with it.
func TestSessionExpiredNotMerged(t *testing.T) {
	const gap, grace = 2_000, 1_000 // retention 3 s
	for _, c := range []struct {
		first int64
		want  map[string]int64
	}{
		{1_000, map[string]int64{"k@1000-1000": 1, "x@4000-4000": 1, "k@2500-2500": 10}}, // expired: 1000 <= 4000 - 3000
		{1_001, map[string]int64{"k@1001-2500": 11, "x@4000-4000": 1}},                   // live
	} {
		t.Run(fmt.Sprint("first=", c.first), func(t *testing.T) {
			b := stream.NewBuilder()
			stream.SessionWindowedBy(stream.From(b, "events", serde.String, serde.Int64).GroupByKey(),
				stream.Sessions(gap*time.Millisecond, grace*time.Millisecond)).
				Reduce(func(a, v int64) int64 { return a + v }, stream.Materialized("sums"), stream.WithoutCaching()).
				ToStream().To("updates")
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d, err := streamtest.New(topo)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			in := streamtest.Input(d, "events", serde.String, serde.Int64)
			for _, e := range []sessEvent{{"k", c.first, 1}, {"x", 4_000, 1}, {"k", 2_500, 10}} {
				if err := in.Pipe(e.key, e.v, e.ts); err != nil {
					t.Fatal(err)
				}
			}
			latest, err := streamtest.Latest(d, "updates", stream.WindowedSerde(serde.String), serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			for k, v := range latest {
				got[fmt.Sprintf("%s@%d-%d", k.Key, k.Start, k.End)] = v
			}
			if !maps.Equal(got, c.want) {
				t.Errorf("sessions: %s", testutil.MapDiff(got, c.want))
			}
		})
	}
}
