package stream_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/internal/windowref"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
)

// The windows of TestEquivalenceWindowsFinalResults, in ms.
const (
	eqSize, eqAdvance, eqGrace = 5_000, 1_000, 1_000
	eqGap, eqSessionGrace      = 2_000, 1_000
	eqSlidingSize              = 2_000
)

// windowedCounts builds the topology of TestEquivalenceWindowsFinalResults:
// the events counted in tumbling, hopping and sliding windows and summed
// in sessions, each followed by Suppress(UntilWindowCloses).
func windowedCounts() *stream.Builder {
	b := stream.NewBuilder()
	g := stream.From(b, "events", serde.String, serde.Int64).GroupByKey()
	stream.WindowedBy(g, stream.Tumbling(eqSize*time.Millisecond, eqGrace*time.Millisecond)).Count().
		Suppress(stream.UntilWindowCloses()).ToStream().To("tumbling")
	stream.WindowedBy(g, stream.Hopping(eqSize*time.Millisecond, eqAdvance*time.Millisecond, eqGrace*time.Millisecond)).Count().
		Suppress(stream.UntilWindowCloses()).ToStream().To("hopping")
	stream.SlidingWindowedBy(g, stream.Sliding(eqSlidingSize*time.Millisecond, eqGrace*time.Millisecond)).Count().
		Suppress(stream.UntilWindowCloses()).ToStream().To("sliding")
	stream.SessionWindowedBy(g, stream.Sessions(eqGap*time.Millisecond, eqSessionGrace*time.Millisecond)).
		Reduce(func(a, v int64) int64 { return a + v }).
		Suppress(stream.UntilWindowCloses()).ToStream().To("sessions")
	return b
}

// TestEquivalenceWindowsFinalResults: counts in tumbling, hopping and
// sliding windows and sums in sessions, each followed by
// Suppress(UntilWindowCloses), give the final results of the plain
// computations of package windowref, whatever the caching, commit interval
// and partition count. The input holds jumps of event time far beyond the
// windows' retention between two commits (a backlog), records out of
// order within grace, and late records. RUNNEL_EQUIV_CASES sets the
// number of seeds, 3 by default. (TestAppEquivalenceWindows runs the same
// on runnel.App.)
func TestEquivalenceWindowsFinalResults(t *testing.T) {
	seeds := uint64(3)
	if s := os.Getenv("RUNNEL_EQUIV_CASES"); s != "" {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == 0 {
			t.Fatalf("RUNNEL_EQUIV_CASES=%q: want a positive integer", s)
		}
		seeds = n
	}
	for seed := range seeds {
		evs := windowref.Events(seed, 500, eqSize, eqGrace)
		rng := rand.New(rand.NewPCG(seed, 20))
		for _, parts := range []int{1, 3} {
			want := map[string]map[string]int64{"tumbling": {}, "hopping": {}, "sliding": {}, "sessions": {}}
			for _, pe := range windowref.ByPartition(evs, parts) {
				maps.Copy(want["tumbling"], windowref.TimeWindows(pe, eqSize, eqSize, eqGrace))
				maps.Copy(want["hopping"], windowref.TimeWindows(pe, eqSize, eqAdvance, eqGrace))
				maps.Copy(want["sliding"], windowref.SlidingWindows(pe, eqSlidingSize, eqGrace))
				maps.Copy(want["sessions"], windowref.SuppressedSessions(pe, eqGap, eqSessionGrace))
			}
			for _, caching := range []bool{false, true} {
				for _, commit := range []int{0, 1, 1 + rng.IntN(100)} {
					t.Run(fmt.Sprintf("seed=%d/partitions=%d/caching=%t/commit=%d", seed, parts, caching, commit), func(t *testing.T) {
						topo, err := windowedCounts().Build()
						if err != nil {
							t.Fatal(err)
						}
						d, err := streamtest.New(topo, streamtest.DefaultPartitions(parts), streamtest.Caching(caching), streamtest.CommitEvery(commit))
						if err != nil {
							t.Fatal(err)
						}
						defer d.Close()
						in := streamtest.Input(d, "events", serde.String, serde.Int64)
						for _, e := range evs {
							if err := in.Pipe(e.Key, e.V, e.TS); err != nil {
								t.Fatal(err)
							}
						}
						if err := d.Commit(); err != nil {
							t.Fatal(err)
						}
						for _, topic := range []string{"tumbling", "hopping", "sliding", "sessions"} {
							out, err := streamtest.Output(d, topic, stream.WindowedSerde(serde.String), serde.Int64)
							if err != nil {
								t.Fatal(err)
							}
							got := map[string]int64{}
							for _, r := range out {
								w := fmt.Sprintf("%s@%d", r.Key.Key, r.Key.Start)
								if topic == "sessions" {
									w = fmt.Sprintf("%s@%d-%d", r.Key.Key, r.Key.Start, r.Key.End)
								}
								if _, dup := got[w]; dup || r.Tombstone {
									t.Errorf("%s: window %s emitted twice or as a tombstone", topic, w)
								}
								got[w] = r.Value
							}
							if !maps.Equal(got, want[topic]) {
								t.Errorf("%s: %s", topic, testutil.MapDiff(got, want[topic]))
							}
						}
					})
				}
			}
		}
	}
}
