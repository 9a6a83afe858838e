package stream_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// windowResults returns the windowed counts written to topic as
// "key@[start,end)=n", in order.
func windowResults(t *testing.T, d *streamtest.Driver, topic string) []string {
	t.Helper()
	out, err := streamtest.Output(d, topic, stream.WindowedSerde(serde.String), serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range out {
		if r.Tombstone {
			got = append(got, fmt.Sprintf("%s@[%d,%d)=<deleted>", r.Key.Key, r.Key.Start, r.Key.End))
			continue
		}
		got = append(got, fmt.Sprintf("%s@[%d,%d)=%d", r.Key.Key, r.Key.Start, r.Key.End, r.Value))
	}
	return got
}

// TestSuppressedTumblingCountCached is issue 19's repro: with the record
// cache on, windows that expired between two commits used to be dropped
// by the cache on flush, so Suppress never saw them and nothing came out.
// Caching may change how many updates reach Suppress, never its final
// results.
func TestSuppressedTumblingCountCached(t *testing.T) {
	for _, caching := range []bool{false, true} {
		t.Run(fmt.Sprintf("caching=%t", caching), func(t *testing.T) {
			b := stream.NewBuilder()
			clicks := stream.From(b, "clicks", serde.String, serde.String).GroupByKey()
			stream.WindowedBy(clicks, stream.Tumbling(10*time.Second, 2*time.Second)).Count().
				Suppress(stream.UntilWindowCloses()).ToStream().To("final")
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d, err := streamtest.New(topo, streamtest.Caching(caching))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			in := streamtest.Input(d, "clicks", serde.String, serde.String)
			for _, s := range []int64{1, 9, 11, 8, 25, 200} {
				if err := in.Pipe("u", "click", s*1000); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Commit(); err != nil {
				t.Fatal(err)
			}
			want := []string{"u@[0,10000)=3", "u@[10000,20000)=1", "u@[20000,30000)=1"}
			if got := windowResults(t, d, "final"); !slices.Equal(got, want) {
				t.Fatalf("final results %v, want %v", got, want)
			}
			if dropped := d.Dropped(); len(dropped) > 0 {
				t.Fatalf("dropped %v", dropped)
			}
		})
	}
}

// TestAppSuppressedHoppingBacklog is issue 19's second repro: stream.App
// with its default record cache runs a hopping count + Suppress over a
// backlog spanning far more event time (100 s) than the windows' retention
// (size + grace, 11 s), all processed within one commit interval. Every
// closed window's final result comes out, once; none is dropped.
func TestAppSuppressedHoppingBacklog(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 1, "clicks", "final")
	const size, advance, grace = 10_000, 2_000, 1_000
	var recs []*kgo.Record
	counts := map[string]int64{} // "key@start" -> records
	for i := range 400 {
		ts, k := int64(i*250), fmt.Sprint("k", i%5)
		recs = append(recs, &kgo.Record{Topic: "clicks", Key: []byte(k), Value: []byte("x"), Timestamp: time.UnixMilli(ts)})
		for start := ts / advance * advance; start > ts-size && start >= 0; start -= advance {
			counts[fmt.Sprintf("%s@%d", k, start)]++
		}
	}
	// A record far ahead closes every window of the backlog.
	recs = append(recs, &kgo.Record{Topic: "clicks", Key: []byte("end"), Value: []byte("x"), Timestamp: time.UnixMilli(1_000_000)})
	if err := newTestClient(t, addr).ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	topo := buildTopology(t, func(b *stream.Builder) {
		stream.WindowedBy(stream.From(b, "clicks", serde.String, serde.String).GroupByKey(),
			stream.Hopping(size*time.Millisecond, advance*time.Millisecond, grace*time.Millisecond)).
			Count(stream.Materialized("counts")).
			Suppress(stream.UntilWindowCloses()).ToStream().To("final")
	})
	app := runApp(t, topo, nil, stream.ApplicationID("backlog"), stream.Brokers(addr), stream.StateDir(t.TempDir()),
		stream.CommitInterval(time.Minute))
	if app.Options().CacheBytes == 0 {
		t.Fatalf("want the default cache: %+v", app.Options())
	}
	deadline := time.Now().Add(60 * time.Second)
	for app.Metrics().RecordsProcessed < int64(len(recs)) {
		if time.Now().After(deadline) {
			t.Fatalf("processed %d of %d records", app.Metrics().RecordsProcessed, len(recs))
		}
		time.Sleep(10 * time.Millisecond) // polling the app's counter
	}
	if err := app.Close(); err != nil { // the commit: the cache flushes
		t.Fatal(err)
	}
	if m := app.Metrics(); m.Commits > 1 || m.DroppedRecords != 0 {
		t.Fatalf("metrics %+v: want one commit (the backlog within one commit interval) and no drops", m)
	}
	got, results := finals(t, addr)
	if !maps.Equal(got, counts) {
		t.Fatalf("final results: %s", mapDiff(got, counts))
	}
	for w, n := range results {
		if n != 1 {
			t.Fatalf("window %s has %d final results", w, n)
		}
	}
}
