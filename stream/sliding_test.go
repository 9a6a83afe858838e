package stream_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
)

// referenceSliding computes sliding windows by their definition: for each
// record at t the window [t-size, t], and [t+1, t+1+size] if it holds
// records; each window's sum is that of the records inside it. No window
// starts before 0: a record earlier than size has the window [0, size].
func referenceSliding(evs []sessEvent, size int64) map[sessKey]int64 {
	byKey := map[string][]sessEvent{}
	for _, e := range evs {
		byKey[e.key] = append(byKey[e.key], e)
	}
	out := map[sessKey]int64{}
	for k, es := range byKey {
		sum := func(from, to int64) (int64, bool) {
			var s int64
			any := false
			for _, e := range es {
				if e.ts >= from && e.ts <= to {
					s, any = s+e.v, true
				}
			}
			return s, any
		}
		for _, e := range es {
			for _, start := range []int64{max(0, e.ts-size), e.ts + 1} {
				if s, ok := sum(start, start+size); ok {
					out[sessKey{k, start, start + size}] = s
				}
			}
		}
	}
	return out
}

// TestSlidingWindows checks sliding windows against their definition, with
// records out of order within grace, with caching on and off, and that
// suppression emits each window once, with its final value.
func TestSlidingWindows(t *testing.T) {
	const size, grace = 1_000, 3_000
	rng := rand.New(rand.NewPCG(7, 8))
	var evs []sessEvent
	now := int64(0) // records earlier than size meet the window [0, size]
	for range 500 {
		now += rng.Int64N(300)
		ts := now
		if rng.IntN(3) == 0 {
			ts = max(0, now-rng.Int64N(grace))
		}
		evs = append(evs, sessEvent{fmt.Sprint("k", rng.IntN(3)), ts, 1 + rng.Int64N(9)})
	}
	want := referenceSliding(evs, size)
	evs = append(evs, sessEvent{"end", now + 10*(size+grace), 1})
	for _, caching := range []bool{false, true} {
		t.Run(fmt.Sprint("caching=", caching), func(t *testing.T) {
			b := stream.NewBuilder()
			sums := stream.SlidingWindowedBy(stream.From(b, "events", serde.String, serde.Int64).GroupByKey(),
				stream.Sliding(size*time.Millisecond, grace*time.Millisecond)).
				Reduce(func(a, v int64) int64 { return a + v }, stream.Materialized("sums"), stream.WithRetention(time.Hour))
			sums.ToStream().To("updates")
			sums.Suppress(stream.UntilWindowCloses()).ToStream().To("final")
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d, err := streamtest.New(topo, streamtest.Caching(caching), streamtest.CommitEvery(7))
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
			if err := d.Commit(); err != nil {
				t.Fatal(err)
			}
			ws := stream.WindowedSerde(serde.String)
			latest, err := streamtest.Latest(d, "updates", ws, serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			got := map[sessKey]int64{}
			for k, v := range latest {
				if k.Key != "end" {
					got[sessKey{k.Key, k.Start, k.End}] = v
				}
			}
			if !maps.Equal(got, want) {
				t.Errorf("windows differ from reference: %s", testutil.MapDiff(got, want))
			}
			final, err := streamtest.Output(d, "final", ws, serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			emitted := map[sessKey]int64{}
			for _, r := range final {
				k := sessKey{r.Key.Key, r.Key.Start, r.Key.End}
				if _, dup := emitted[k]; dup {
					t.Errorf("window %v emitted twice", k)
				}
				emitted[k] = r.Value
			}
			if !maps.Equal(emitted, want) {
				t.Errorf("suppressed finals differ: %s", testutil.MapDiff(emitted, want))
			}
		})
	}
}
