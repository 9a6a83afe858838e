package runnel_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
)

// TestAppRevokedQueuedRecordsProcessedOnceByNewOwner: under exactly-once,
// a task moving to another instance while clicks wait in its queues for
// the users' partition (paused on the first instance) leaves them
// unprocessed and uncommitted, though the clicks before them were
// processed and committed; the new owner reads them from the committed
// offset and joins each click once, as a plain Go join does.
func TestAppRevokedQueuedRecordsProcessedOnceByNewOwner(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 2, "users", "clicks", "enriched")
	const users, clicks, early = 1200, 1000, 50
	// Uncompressed: the pad would compress to nothing.
	cl := newTestClient(t, addr, kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	t0 := time.UnixMilli(1_700_000_000_000)
	pad := strings.Repeat("x", 2000) // several fetches' worth of users per partition
	name := map[string]string{}
	var recs []*kgo.Record
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	for i := range users {
		k := fmt.Sprintf("u%04d", i)
		name[k] = fmt.Sprintf("name-%d", i)
		recs = append(recs, &kgo.Record{Topic: "users", Key: []byte(k), Value: []byte(name[k] + " " + pad), Timestamp: ms(2 * i)})
	}
	want := map[string]int{} // "click by name" -> times
	for i := range clicks {
		// The first clicks come right after the first users, which the
		// first fetches bring; the others after every user, of the last
		// users, which come last.
		k, ts := fmt.Sprintf("u%04d", i), ms(2*i+1)
		if i >= early {
			k, ts = fmt.Sprintf("u%04d", users-1-i%300), ms(2*users+i)
		}
		click := fmt.Sprintf("click-%d", i)
		want[click+" by "+name[k]]++
		recs = append(recs, &kgo.Record{Topic: "clicks", Key: []byte(k), Value: []byte(click), Timestamp: ts})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	topo := buildTopology(t, func(b *stream.Builder) {
		table := stream.TableOf(b, "users", serde.String, serde.String)
		in := stream.From(b, "clicks", serde.String, serde.String)
		stream.JoinTable(in, table, func(c, u string) string { return c + " by " + strings.Fields(u)[0] }).To("enriched")
	})
	opts := []runnel.AppOption{runnel.ApplicationID("join-rebalance"), runnel.Brokers(addr)}

	// The first instance stops fetching users once it has processed
	// some: the early clicks are processed, the others wait, queued, for
	// the users behind them.
	var paused atomic.Bool
	paused.Store(true)
	var queued, dropped atomic.Int64
	usersParts := map[string][]int32{"users": {0, 1}}
	a := runApp(t, topo, func(a *runnel.App) {
		runnel.PauseInput(a, func() (pause, resume map[string][]int32) {
			if paused.Load() && a.Metrics().RecordsProcessed > 0 {
				return usersParts, nil
			}
			return nil, usersParts
		})
		// Long enough to hold the clicks through the rebalance.
		runnel.WatchQueues(a, 2*time.Minute, func(n int) { queued.Store(int64(n)) }, func(n int) { dropped.Add(int64(n)) })
	}, append(opts, runnel.StateDir(t.TempDir()))...)
	waitMetrics(t, "clicks queued on the first instance", func() bool { return queued.Load() >= clicks-early })
	if n := a.Metrics().RecordsProcessed; n >= users {
		t.Fatalf("the first instance processed %d records with the users paused", n)
	}

	b := runApp(t, topo, nil, append(opts, runnel.StateDir(t.TempDir()))...)
	waitMetrics(t, "a task on each instance", func() bool {
		return a.Metrics().ActiveTasks == 1 && b.Metrics().ActiveTasks == 1
	})
	if dropped.Load() == 0 {
		t.Fatal("the revoked task had no clicks queued")
	}
	t.Logf("the revoked task dropped %d queued records", dropped.Load())
	paused.Store(false)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range readTopic(t, addr, "enriched") {
		got[string(r.Value)]++
	}
	if !maps.Equal(got, want) {
		missing, extra := 0, 0
		for k, n := range want {
			missing += max(n-got[k], 0)
		}
		for k, n := range got {
			extra += max(n-want[k], 0)
		}
		t.Fatalf("joined %d distinct results, want %d: %d missing, %d extra or wrong", len(got), len(want), missing, extra)
	}
}
