package runnel_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/internal/windowref"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAppEquivalenceWindows is stream's TestEquivalenceWindowsFinalResults
// on runnel.App: over its embedded broker, with the default options
// (exactly-once, the record cache, a 100 ms commit interval), counts in
// tumbling, hopping and sliding windows and sums in sessions, each
// followed by Suppress(UntilWindowCloses), give the final results of the
// plain computations of package windowref — once WaitIdle says the input
// is processed. The input holds backlogs spanning more event time than
// the windows' retention, records out of order within grace, and late
// records. RUNNEL_EQUIV_CASES sets the number of cases (seeds, with 1 to
// 3 partitions), 2 by default.
func TestAppEquivalenceWindows(t *testing.T) {
	const (
		size, advance, grace = 5_000, 1_000, 1_000
		gap, sessionGrace    = 2_000, 1_000
		slidingSize          = 2_000
		events               = 500
	)
	ms := func(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
	for c := range envInt(t, "RUNNEL_EQUIV_CASES", 2) {
		seed, parts := uint64(c), 1+2*(c%2)
		if c >= 2 {
			parts = 1 + c%3
		}
		t.Run(fmt.Sprintf("seed=%d/partitions=%d", seed, parts), func(t *testing.T) {
			evs := windowref.Events(seed, events, size, grace)
			want := map[string]map[string]int64{"tumbling": {}, "hopping": {}, "sliding": {}, "sessions": {}}
			for _, pe := range windowref.ByPartition(evs, parts) {
				maps.Copy(want["tumbling"], windowref.TimeWindows(pe, size, size, grace))
				maps.Copy(want["hopping"], windowref.TimeWindows(pe, size, advance, grace))
				maps.Copy(want["sliding"], windowref.SlidingWindows(pe, slidingSize, grace))
				maps.Copy(want["sessions"], windowref.SuppressedSessions(pe, gap, sessionGrace))
			}
			topo := buildTopology(t, func(b *stream.Builder) {
				g := stream.From(b, "events", serde.String, serde.Int64).GroupByKey()
				stream.WindowedBy(g, stream.Tumbling(ms(size), ms(grace))).Count().
					Suppress(stream.UntilWindowCloses()).ToStream().To("tumbling")
				stream.WindowedBy(g, stream.Hopping(ms(size), ms(advance), ms(grace))).Count().
					Suppress(stream.UntilWindowCloses()).ToStream().To("hopping")
				stream.SlidingWindowedBy(g, stream.Sliding(ms(slidingSize), ms(grace))).Count().
					Suppress(stream.UntilWindowCloses()).ToStream().To("sliding")
				stream.SessionWindowedBy(g, stream.Sessions(ms(gap), ms(sessionGrace))).
					Reduce(func(a, v int64) int64 { return a + v }).
					Suppress(stream.UntilWindowCloses()).ToStream().To("sessions")
			})
			app := runApp(t, topo, nil, runnel.ApplicationID("equivalence"), runnel.StateDir(t.TempDir()),
				runnel.CreateSourceTopics(parts), runnel.CreateSinkTopics(1))
			addr := app.Brokers()[0]
			// Each partition's events in their order, where Kafka's
			// default partitioner puts them, as the reference assumes.
			cl := newTestClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			var recs []*kgo.Record
			for _, e := range evs {
				recs = append(recs, &kgo.Record{Topic: "events", Partition: int32(windowref.Partition([]byte(e.Key), parts)),
					Key: []byte(e.Key), Value: int64Bytes(e.V), Timestamp: time.UnixMilli(e.TS)})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if err := app.WaitIdle(ctx); err != nil {
				t.Fatal(err)
			}
			ws := stream.WindowedSerde(serde.String)
			for _, topic := range []string{"tumbling", "hopping", "sliding", "sessions"} {
				got := map[string]int64{}
				for _, r := range readTopic(t, addr, topic) {
					k, err := ws.Deserialize(r.Key)
					if err != nil {
						t.Fatal(err)
					}
					v, err := decodeInt64(r.Value)
					if err != nil || r.Value == nil {
						t.Fatalf("%s: window %v: value %x: %v", topic, k, r.Value, err)
					}
					w := fmt.Sprintf("%s@%d", k.Key, k.Start)
					if topic == "sessions" {
						w = fmt.Sprintf("%s@%d-%d", k.Key, k.Start, k.End)
					}
					if _, dup := got[w]; dup {
						t.Errorf("%s: window %s emitted twice", topic, w)
					}
					got[w] = v
				}
				if !maps.Equal(got, want[topic]) {
					t.Errorf("%s: %s", topic, testutil.MapDiff(got, want[topic]))
				}
			}
			if m := app.Metrics(); m.RecordsProcessed < events {
				t.Errorf("processed %d of %d records", m.RecordsProcessed, events)
			}
		})
	}
}
