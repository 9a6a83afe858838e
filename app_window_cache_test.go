package runnel_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAppSuppressedHoppingBacklog is issue 19's second repro: runnel.App
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
	app := runApp(t, topo, nil, runnel.ApplicationID("backlog"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()),
		runnel.CommitInterval(time.Minute))
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
		t.Fatalf("final results: %s", testutil.MapDiff(got, counts))
	}
	for w, n := range results {
		if n != 1 {
			t.Fatalf("window %s has %d final results", w, n)
		}
	}
}
