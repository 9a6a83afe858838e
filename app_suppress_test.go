package runnel_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/twmb/franz-go/pkg/kgo"
)

// wallClockSuppress counts clicks per key in 1 s windows (grace 2 s) and
// sends each window's final count to "final" once stream time or, after
// input stops, the wall clock closes it.
func wallClockSuppress(b *stream.Builder) {
	counts := stream.WindowedBy(stream.From(b, "clicks", serde.String, serde.String).GroupByKey(),
		stream.Tumbling(time.Second, 2*time.Second)).Count(stream.Materialized("counts"))
	counts.Suppress(stream.UntilWindowCloses().WallClockClose(time.Second)).ToStream().To("final")
}

func startWallClockSuppress(t *testing.T, addr, dir string) *runnel.App {
	t.Helper()
	return runApp(t, buildTopology(t, wallClockSuppress), nil, runnel.ApplicationID("wallclock"), runnel.Brokers(addr), runnel.StateDir(dir),
		runnel.CommitInterval(100*time.Millisecond))
}

// produceRecentClicks produces 4 s of clicks on 5 keys ending about now:
// stream time closes the first window (1 s, grace 2 s); the others only
// close by wall clock. It returns when they start and the count per
// "key@start".
func produceRecentClicks(t *testing.T, cl *kgo.Client) (base time.Time, want map[string]int64) {
	t.Helper()
	base = time.Now().Add(-4 * time.Second).Truncate(time.Second)
	want = map[string]int64{}
	var recs []*kgo.Record
	for i := range 200 {
		ts := base.Add(time.Duration(i*20) * time.Millisecond)
		k := fmt.Sprintf("k%d", i%5)
		recs = append(recs, &kgo.Record{Topic: "clicks", Key: []byte(k), Value: []byte("x"), Timestamp: ts})
		want[fmt.Sprintf("%s@%d", k, ts.Truncate(time.Second).UnixMilli())]++
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return base, want
}

// finals reads the final results: count per "key@start", and how many
// results each window had.
func finals(t *testing.T, addr string) (map[string]int64, map[string]int) {
	ws := stream.WindowedSerde(serde.String)
	counts, results := map[string]int64{}, map[string]int{}
	for _, r := range readTopic(t, addr, "final") {
		k, err := ws.Deserialize(r.Key)
		if err != nil {
			t.Fatal(err)
		}
		v, err := decodeInt64(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		w := fmt.Sprintf("%s@%d", k.Key, k.Start)
		counts[w] = v
		results[w]++
	}
	return counts, results
}

// waitFinals polls the final results until they include want.
func waitFinals(t *testing.T, addr string, want map[string]int64) map[string]int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, results := finals(t, addr)
		ok := true
		for w, n := range want {
			ok = ok && got[w] == n
		}
		if ok {
			return results
		}
		if time.Now().After(deadline) {
			t.Fatalf("final results\n got %v\nwant %v", got, want)
		}
		time.Sleep(20 * time.Millisecond) // polling a broker, not waiting for an event we could observe
	}
}

// TestAppSuppressWallClockClose: the final results of every window come
// out after input stops, although no later record moves stream time past
// the last windows; a restarted instance keeps the wall-clock bound, so an
// update of a window closed by wall clock does not give a second result.
func TestAppSuppressWallClockClose(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 1, "clicks", "final")
	cl := newTestClient(t, addr)
	dir := t.TempDir()
	app := startWallClockSuppress(t, addr, dir)

	base, want := produceRecentClicks(t, cl)
	results := waitFinals(t, addr, want)
	if len(results) != len(want) {
		t.Fatalf("results for %d windows, want %d: %v", len(results), len(want), results)
	}
	for w, n := range results {
		if n != 1 {
			t.Fatalf("window %s has %d final results", w, n)
		}
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart: an update of the last window (inside grace by
	// stream time, so the count takes it) is late for the suppression; a
	// record of a new window then closes it by wall clock. Had the bound
	// been lost, the late update would have given the last window a second
	// result at the latest when the new window's came out.
	startWallClockSuppress(t, addr, dir)
	last := base.Add(3*time.Second + 500*time.Millisecond)
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "clicks", Key: []byte("k0"), Value: []byte("x"), Timestamp: last}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "clicks", Key: []byte("marker"), Value: []byte("x"), Timestamp: now}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("marker@%d", now.Truncate(time.Second).UnixMilli())
	results = waitFinals(t, addr, map[string]int64{marker: 1})
	lastWindow := fmt.Sprintf("k0@%d", last.Truncate(time.Second).UnixMilli())
	if results[lastWindow] != 1 || len(results) != len(want)+1 {
		t.Fatalf("after the restart: results %v; want one more window (%s) and one result for %s", results, marker, lastWindow)
	}
	got, _ := finals(t, addr)
	delete(got, marker)
	if !maps.Equal(got, want) {
		t.Fatalf("final counts changed: got %v want %v", got, want)
	}
}
