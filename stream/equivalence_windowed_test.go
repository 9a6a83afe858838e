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

// kafkaPartition is the partition of key among n, by Kafka's default
// partitioner (murmur2 of the key bytes), written here for the reference
// computations, apart from the driver's.
func kafkaPartition(key []byte, n int) int {
	const m, r = uint32(0x5bd1e995), 24
	h := uint32(0x9747b28c) ^ uint32(len(key))
	i := 0
	for ; i+4 <= len(key); i += 4 {
		k := uint32(key[i]) | uint32(key[i+1])<<8 | uint32(key[i+2])<<16 | uint32(key[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h = h*m ^ k
	}
	switch len(key) - i {
	case 3:
		h ^= uint32(key[i+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(key[i+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(key[i])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int((h & 0x7fffffff) % uint32(n))
}

// refTimeWindows computes the final results of a count in time windows
// (size, advance, grace in ms) followed by Suppress(UntilWindowCloses), for
// the events of one partition in order: "key@start" -> count. Stream time
// is the largest timestamp seen; a record counts in a window while the
// window's end is after stream time − grace; Suppress's time is the largest
// timestamp of a record counted, and a window is final once that reaches
// its end + grace.
func refTimeWindows(evs []sessEvent, size, advance, grace int64) map[string]int64 {
	counts := map[string]int64{}
	ends := map[string]int64{}
	streamTime, suppressTime := int64(-1), int64(-1)
	for _, e := range evs {
		streamTime = max(streamTime, e.ts)
		for start := e.ts / advance * advance; start >= 0 && start+size > e.ts; start -= advance {
			if start+size <= streamTime-grace {
				continue // closed
			}
			w := fmt.Sprintf("%s@%d", e.key, start)
			counts[w]++
			ends[w] = start + size
			suppressTime = max(suppressTime, e.ts)
		}
	}
	for w, end := range ends {
		if end+grace > suppressTime {
			delete(counts, w)
		}
	}
	return counts
}

// refSuppressedSessions computes what a session sum followed by
// Suppress(UntilWindowCloses) emits for the events of one partition in
// order: "key@start-end" -> sum. Sessions merge as in referenceSessions;
// Suppress's time is the largest end of a session updated, and a session
// is emitted, once, when that passes its end + 2 × gap + grace. A late
// record may still bridge an emitted session to a live one (as in Kafka
// Streams); the merged session is then a result of its own.
func refSuppressedSessions(evs []sessEvent, gap, grace int64) map[string]int64 {
	live := map[string][]refSession{}
	emitted := map[string]int64{}
	observed, suppressTime := int64(-1), int64(-1)
	for _, e := range evs {
		observed = max(observed, e.ts)
		merged := refSession{e.ts, e.ts, e.v}
		var keep []refSession
		for _, s := range live[e.key] {
			if s.end >= e.ts-gap && s.start <= e.ts+gap {
				merged.start, merged.end, merged.sum = min(merged.start, s.start), max(merged.end, s.end), merged.sum+s.sum
			} else {
				keep = append(keep, s)
			}
		}
		if merged.end < observed-grace-gap {
			continue // late
		}
		live[e.key] = append(keep, merged)
		suppressTime = max(suppressTime, merged.end)
		for k, ss := range live {
			for _, s := range ss {
				w := fmt.Sprintf("%s@%d-%d", k, s.start, s.end)
				if _, done := emitted[w]; !done && s.end+2*gap+grace < suppressTime {
					emitted[w] = s.sum
				}
			}
		}
	}
	return emitted
}

// TestEquivalenceWindowsFinalResults: counts in tumbling, hopping and
// session windows, each followed by Suppress(UntilWindowCloses), give the
// final results of a plain computation in this test, whatever the
// caching, commit interval and partition count. The input holds jumps of
// event time far beyond the windows' retention between two commits (a
// backlog), records out of order within grace, and late records.
func TestEquivalenceWindowsFinalResults(t *testing.T) {
	const (
		size, advance, grace = 5_000, 1_000, 1_000
		gap, sessionGrace    = 2_000, 1_000
	)
	build := func() *stream.Builder {
		b := stream.NewBuilder()
		g := stream.From(b, "events", serde.String, serde.Int64).GroupByKey()
		stream.WindowedBy(g, stream.Tumbling(size*time.Millisecond, grace*time.Millisecond)).Count().
			Suppress(stream.UntilWindowCloses()).ToStream().To("tumbling")
		stream.WindowedBy(g, stream.Hopping(size*time.Millisecond, advance*time.Millisecond, grace*time.Millisecond)).Count().
			Suppress(stream.UntilWindowCloses()).ToStream().To("hopping")
		stream.SessionWindowedBy(g, stream.Sessions(gap*time.Millisecond, sessionGrace*time.Millisecond)).
			Reduce(func(a, v int64) int64 { return a + v }).
			Suppress(stream.UntilWindowCloses()).ToStream().To("sessions")
		return b
	}
	for seed := range uint64(3) {
		rng := rand.New(rand.NewPCG(seed, 19))
		var evs []sessEvent
		now := int64(0)
		for range 500 {
			ts := now
			switch n := rng.IntN(20); {
			case n == 0: // a jump far past every window's retention
				now += 20_000 + rng.Int64N(40_000)
				ts = now
			case n < 4: // out of order, within grace
				ts = max(0, now-rng.Int64N(grace))
			case n < 6: // late
				ts = max(0, now-size-grace-rng.Int64N(3*size))
			default:
				now += rng.Int64N(400)
				ts = now
			}
			evs = append(evs, sessEvent{fmt.Sprint("k", rng.IntN(6)), ts, 1 + rng.Int64N(9)})
		}
		for _, parts := range []int{1, 3} {
			byPart := make([][]sessEvent, parts)
			for _, e := range evs {
				p := kafkaPartition([]byte(e.key), parts)
				byPart[p] = append(byPart[p], e)
			}
			tumbling, hopping, sessions := map[string]int64{}, map[string]int64{}, map[string]int64{}
			for _, pe := range byPart {
				maps.Copy(tumbling, refTimeWindows(pe, size, size, grace))
				maps.Copy(hopping, refTimeWindows(pe, size, advance, grace))
				maps.Copy(sessions, refSuppressedSessions(pe, gap, sessionGrace))
			}
			for _, caching := range []bool{false, true} {
				for _, commit := range []int{0, 1, 1 + rng.IntN(100)} {
					t.Run(fmt.Sprintf("seed=%d/partitions=%d/caching=%t/commit=%d", seed, parts, caching, commit), func(t *testing.T) {
						topo, err := build().Build()
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
							if err := in.Pipe(e.key, e.v, e.ts); err != nil {
								t.Fatal(err)
							}
						}
						if err := d.Commit(); err != nil {
							t.Fatal(err)
						}
						for _, c := range []struct {
							topic   string
							want    map[string]int64
							session bool
						}{{"tumbling", tumbling, false}, {"hopping", hopping, false}, {"sessions", sessions, true}} {
							out, err := streamtest.Output(d, c.topic, stream.WindowedSerde(serde.String), serde.Int64)
							if err != nil {
								t.Fatal(err)
							}
							got := map[string]int64{}
							for _, r := range out {
								w := fmt.Sprintf("%s@%d", r.Key.Key, r.Key.Start)
								if c.session {
									w = fmt.Sprintf("%s@%d-%d", r.Key.Key, r.Key.Start, r.Key.End)
								}
								if _, dup := got[w]; dup || r.Tombstone {
									t.Errorf("%s: window %s emitted twice or as a tombstone", c.topic, w)
								}
								got[w] = r.Value
							}
							if !maps.Equal(got, c.want) {
								t.Errorf("%s: %s", c.topic, testutil.MapDiff(got, c.want))
							}
						}
					})
				}
			}
		}
	}
}
