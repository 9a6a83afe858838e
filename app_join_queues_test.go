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
	"github.com/runnel-dev/runnel/topology"
)

// joinQueueInput writes users (several fetches' worth per partition) and
// clicks to users and clicks, of 2 partitions, and returns the join of
// clicks with users and the plain Go join of the input: "click by name"
// -> times. The first clicks come right after the first users, which the
// first fetches bring; the others after every user, and refer to the
// last users, which come last. An instance that stops fetching users
// once it has processed some processes the first clicks and keeps the
// others queued. There are clicks clicks; extra, if not nil, adds to
// the topology.
func joinQueueInput(t *testing.T, addr string, clicks int, extra func(*stream.Builder)) (*topology.Topology, map[string]int) {
	t.Helper()
	createTopics(t, addr, 2, "users", "clicks", "enriched")
	// Uncompressed: the pad would compress to nothing.
	cl := newTestClient(t, addr, kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	t0 := time.UnixMilli(1_700_000_000_000)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	// 8 KB per user: 4.8 MB per users partition, about five fetches
	// (1 MiB of a partition each). With less, a busy machine could fetch
	// every user before the pause took hold, leaving nothing to hold the
	// clicks back and nothing queued.
	pad := strings.Repeat("x", 8000)
	name := map[string]string{}
	var recs []*kgo.Record
	for i := range joinUsers {
		k := fmt.Sprintf("u%04d", i)
		name[k] = fmt.Sprintf("name-%d", i)
		recs = append(recs, &kgo.Record{Topic: "users", Key: []byte(k), Value: []byte(name[k] + " " + pad), Timestamp: ms(2 * i)})
	}
	want := map[string]int{}
	for i := range clicks {
		k, ts := fmt.Sprintf("u%04d", i), ms(2*i+1)
		if i >= joinEarly {
			k, ts = fmt.Sprintf("u%04d", joinUsers-1-i%300), ms(2*joinUsers+i)
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
		if extra != nil {
			extra(b)
		}
	})
	return topo, want
}

const joinUsers, joinClicks, joinEarly = 1200, 1000, 50

// pauseUsersOnceProcessing makes a pause the users' partitions once it has
// processed a record, while paused holds, and keep its clicks queued (for
// two minutes at most: through whatever the test does meanwhile); resumed
// is set once they are resumed (once: a later resume could undo the pause
// of a task restoring). queued receives the count of records queued after
// each turn.
func pauseUsersOnceProcessing(a *runnel.App, paused, resumed *atomic.Bool, queued *atomic.Int64, dropped func(int)) {
	users := map[string][]int32{"users": {0, 1}}
	runnel.PauseInput(a, func() (pause, resume map[string][]int32) {
		switch {
		case paused.Load() && a.Metrics().RecordsProcessed > 0:
			return users, nil
		case !paused.Load() && resumed.CompareAndSwap(false, true):
			return nil, users
		}
		return nil, nil
	})
	runnel.WatchQueues(a, 2*time.Minute, func(n int) { queued.Store(int64(n)) }, dropped)
}

// checkJoinOutput compares the join's output with want, as a multiset.
func checkJoinOutput(t *testing.T, addr string, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for _, r := range readTopic(t, addr, "enriched") {
		got[string(r.Value)]++
	}
	if maps.Equal(got, want) {
		return
	}
	missing, extra := 0, 0
	for k, n := range want {
		missing += max(n-got[k], 0)
	}
	for k, n := range got {
		extra += max(n-want[k], 0)
	}
	t.Fatalf("joined %d distinct results, want %d: %d missing, %d extra or wrong", len(got), len(want), missing, extra)
}

// TestAppRevokedQueuedRecordsProcessedOnceByNewOwner: under exactly-once,
// a task moving to another instance while clicks wait in its queues for
// the users' partition (paused on the first instance) leaves them
// unprocessed and uncommitted, though the clicks before them were
// processed and committed; the new owner reads them from the committed
// offset and joins each click once, as a plain Go join does. With the
// polled offsets committed, 466 clicks were missing.
func TestAppRevokedQueuedRecordsProcessedOnceByNewOwner(t *testing.T) {
	addr := startAppBroker(t)
	topo, want := joinQueueInput(t, addr, joinClicks, nil)
	opts := []runnel.AppOption{runnel.ApplicationID("join-rebalance"), runnel.Brokers(addr)}
	var paused, resumed atomic.Bool
	paused.Store(true)
	var queued, dropped atomic.Int64
	a := runApp(t, topo, func(a *runnel.App) {
		pauseUsersOnceProcessing(a, &paused, &resumed, &queued, func(n int) { dropped.Add(int64(n)) })
	}, append(opts, runnel.StateDir(t.TempDir()))...)
	waitMetrics(t, "clicks queued on the first instance", func() bool { return queued.Load() >= joinClicks-joinEarly })

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
	checkJoinOutput(t, addr, want)
}

// TestAppAbortRewindsPastQueuedRecords: under exactly-once, a transaction
// aborted while clicks wait queued rewinds the input to the offsets
// processed and committed, though the session took the polled ones as
// committed at the transaction before (which a record of another
// sub-topology makes): the queued clicks are read again and joined once
// each. Rewound by the session alone, the queued clicks were skipped.
func TestAppAbortRewindsPastQueuedRecords(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 1, "other", "other-out")
	topo, want := joinQueueInput(t, addr, joinClicks, func(b *stream.Builder) {
		stream.From(b, "other", serde.String, serde.String).To("other-out")
	})
	var paused, resumed, abort atomic.Bool
	paused.Store(true)
	var queued atomic.Int64
	app := runApp(t, topo, func(a *runnel.App) {
		pauseUsersOnceProcessing(a, &paused, &resumed, &queued, nil)
		runnel.AbortCommits(a, func() bool { return abort.CompareAndSwap(true, false) })
	}, runnel.ApplicationID("join-abort"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()))
	waitMetrics(t, "clicks queued", func() bool { return queued.Load() >= joinClicks-joinEarly })
	// A transaction commits offsets with the clicks polled and queued.
	cl := newTestClient(t, addr)
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "other", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitMetrics(t, "the other record committed", func() bool { return len(readTopic(t, addr, "other-out")) == 1 })
	// The next transaction, once the users come, is aborted.
	paused.Store(false)
	waitMetrics(t, "users resumed", resumed.Load)
	abort.Store(true)
	waitMetrics(t, "an aborted transaction", func() bool { return app.Metrics().Aborts > 0 })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := app.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := app.Metrics().Aborts; n != 1 {
		t.Fatalf("%d transactions aborted, want 1", n)
	}
	checkJoinOutput(t, addr, want)
}

// TestAppQueuesBounded: a partition whose queue is full is paused until
// half of it is processed (buffered.records.per.partition): with the users
// paused and 20,000 clicks to read, the first instance holds a bounded
// number queued, and, once the users come, joins every click.
func TestAppQueuesBounded(t *testing.T) {
	addr := startAppBroker(t)
	const clicks = 20_000
	topo, want := joinQueueInput(t, addr, clicks, nil)
	var paused, resumed atomic.Bool
	paused.Store(true)
	var queued, most atomic.Int64
	app := runApp(t, topo, func(a *runnel.App) {
		// The users are paused from the first turn on (not once some
		// are processed, as the other tests do): the clicks must queue
		// however the fetches and the loop's turns interleave.
		users := map[string][]int32{"users": {0, 1}}
		runnel.PauseInput(a, func() (pause, resume map[string][]int32) {
			switch {
			case paused.Load():
				return users, nil
			case resumed.CompareAndSwap(false, true):
				return nil, users
			}
			return nil, nil
		})
		runnel.WatchQueues(a, 2*time.Minute, func(n int) {
			queued.Store(int64(n))
			for m := most.Load(); int64(n) > m && !most.CompareAndSwap(m, int64(n)); m = most.Load() {
			}
		}, nil)
	}, runnel.ApplicationID("join-bounded"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()))
	// Each of the 2 clicks partitions is paused past 1,000 queued; a
	// poll (at most 1,000 records) may come on top.
	const bound = 2 * (1000 + 1000)
	waitMetrics(t, "clicks queued", func() bool { return queued.Load() >= 2*1000 })
	// The queues stay put, however long: poll a while for growth.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if n := most.Load(); n > bound {
			t.Fatalf("%d records queued, more than %d", n, bound)
		}
		time.Sleep(20 * time.Millisecond) // watching a counter for growth, nothing to wait on
	}
	paused.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := app.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := most.Load(); n > bound {
		t.Fatalf("%d records queued, more than %d", n, bound)
	}
	t.Logf("at most %d records queued", most.Load())
	checkJoinOutput(t, addr, want)
}
