package runnel_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startDelayedBroker runs a broker over TCP that holds an empty group's
// first rebalance open for delay (group.initial.rebalance.delay.ms), as
// Kafka and Runnel do by default.
func startDelayedBroker(t *testing.T, delay time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0",
		GroupInitialRebalanceDelay: delay,
		OffsetsTopicPartitions:     1, TransactionStateTopicPartitions: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.WaitGroupsLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	return b.Addr()
}

// TestAppRebalanceNotHeldByCommitInterval: an at-least-once app
// with a 30 s commit interval, against a broker with the default 3 s
// initial rebalance delay, takes its first assignment when the group
// makes it, not at its first commit: its first output comes within a
// few seconds of the start; a second instance joining gets its share as
// soon.
func TestAppRebalanceNotHeldByCommitInterval(t *testing.T) {
	addr := startDelayedBroker(t, 3*time.Second)
	createTopics(t, addr, 2, "nums", "copy", "sums")
	cl := newTestClient(t, addr)
	recs := []*kgo.Record{
		{Topic: "nums", Key: []byte("a"), Value: []byte{0, 0, 0, 0, 0, 0, 0, 1}},
		{Topic: "nums", Key: []byte("b"), Value: []byte{0, 0, 0, 0, 0, 0, 0, 2}},
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	opts := func() []runnel.AppOption {
		return []runnel.AppOption{runnel.ApplicationID("first"), runnel.Brokers(addr),
			runnel.StateDir(t.TempDir()), runnel.ProcessingGuarantee(runnel.AtLeastOnce),
			runnel.CommitInterval(30 * time.Second)}
	}
	start := time.Now()
	a := runApp(t, numsTopology(t, noHook), nil, opts()...)
	// 3 s of delay, a join and a sync; 15 s leaves room for a loaded
	// machine and is still half the commit interval the app waited for.
	const limit = 15 * time.Second
	for len(readTopic(t, addr, "copy")) < len(recs) {
		if time.Since(start) > limit {
			t.Fatalf("no output %v after the start (commit interval 30 s)", limit)
		}
		time.Sleep(50 * time.Millisecond) // polling a broker, no event to wait on
	}
	t.Logf("first output %v after the start", time.Since(start).Round(time.Millisecond))

	// A second instance joining: the first commits and gives up half of
	// its tasks without waiting for its commit interval.
	start = time.Now()
	b := runApp(t, numsTopology(t, noHook), nil, opts()...)
	for a.Metrics().ActiveTasks != 2 || b.Metrics().ActiveTasks != 2 {
		if time.Since(start) > limit {
			t.Fatalf("tasks %v after the second instance started: %d and %d, want 2 and 2",
				limit, a.Metrics().ActiveTasks, b.Metrics().ActiveTasks)
		}
		time.Sleep(20 * time.Millisecond) // polling counters, no event to wait on
	}
	t.Logf("rebalanced %v after the second instance started", time.Since(start).Round(time.Millisecond))
}

// TestAppStalledTaskReported: a task whose input partition is paused while
// records wait in it is reported stalled after the stall timeout (a WARN
// line and runnel_stream_task_stalled 1), the task of the other partition,
// with nothing to read, is not; resumed, the task catches up and is no
// longer stalled.
func TestAppStalledTaskReported(t *testing.T) {
	for _, g := range []runnel.Guarantee{runnel.ExactlyOnce, runnel.AtLeastOnce} {
		t.Run(g.String(), func(t *testing.T) {
			addr := startAppBroker(t)
			createTopics(t, addr, 2, "nums", "copy", "sums")
			cl := newTestClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			produce := func(p int32, n int) {
				var recs []*kgo.Record
				for i := range n {
					recs = append(recs, &kgo.Record{Topic: "nums", Partition: p, Key: []byte(strconv.Itoa(i)), Value: make([]byte, 8)})
				}
				if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			var paused, resumed atomic.Bool
			var pausedTurns atomic.Int64 // turns that paused partition 0
			part0 := map[string][]int32{"nums": {0}}
			reg := prometheus.NewRegistry()
			var logs lockedBuffer
			app := runApp(t, numsTopology(t, noHook), func(a *runnel.App) {
				runnel.PauseInput(a, func() (pause, resume map[string][]int32) {
					if resumed.Load() {
						return nil, part0
					}
					if paused.Load() {
						pausedTurns.Add(1)
						return part0, nil
					}
					return nil, nil
				})
			}, runnel.ApplicationID("stall"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()),
				runnel.ProcessingGuarantee(g), runnel.CommitInterval(100*time.Millisecond),
				runnel.StallTimeout(time.Second), runnel.MetricsRegisterer(reg),
				runnel.Logger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			t.Cleanup(func() {
				if t.Failed() {
					t.Log(logs.String())
				}
			})

			produce(0, 10)
			produce(1, 10)
			// Each record is processed twice: by sub-topology 0, and
			// repartitioned, by sub-topology 1.
			waitMetrics(t, "the first records processed", func() bool { return app.Metrics().RecordsProcessed == 40 })
			paused.Store(true)
			// The second turn that pauses it comes after the first paused it.
			waitMetrics(t, "partition 0 paused", func() bool { return pausedTurns.Load() >= 2 })
			produce(0, 10)

			stalled := func(task string) float64 {
				m := series(t, reg, "runnel_stream_task_stalled")["application_id=stall,task="+task]
				if m == nil {
					return -1
				}
				return value(m)
			}
			waitFor(t, "task 0_0 reported stalled", func() bool { return stalled("0_0") == 1 })
			if !strings.Contains(logs.String(), "level=WARN msg=\"stream: task stalled") {
				t.Fatalf("no WARN line for the stall; log:\n%s", logs.String())
			}
			if s := stalled("0_1"); s == 1 {
				t.Fatal("task 0_1, with nothing to read, reported stalled")
			}
			if n := app.Metrics().RecordsProcessed; n != 40 {
				t.Fatalf("%d records processed while partition 0 was paused, want 40", n)
			}

			resumed.Store(true)
			waitFor(t, "task 0_0 no longer stalled", func() bool { return stalled("0_0") == 0 })
			waitMetrics(t, "the paused records processed", func() bool { return app.Metrics().RecordsProcessed == 60 })
		})
	}
}

// TestAppWindowedExactlyOnceNoStall is the stress test of issue 21's hang:
// an exactly-once hopping-window count (the benchmark's q5) over a
// backlog in 6 partitions must process all of it, its position never
// standing still for long while input waits. A run fails when the stall
// watchdog reports a task (30 s: with a backlog, the client hands over one
// fetch of up to 1 MB per partition after another, and a partition may
// wait several seconds for its turn) or nothing is processed for 30 s, with
// every goroutine's stack in the log. go test runs 20,000 records once;
// RUNNEL_STALL_RECORDS and RUNNEL_STALL_RUNS make it longer (the hang
// was seen once in 2,000,000 records).
func TestAppWindowedExactlyOnceNoStall(t *testing.T) {
	records, runs := envInt(t, "RUNNEL_STALL_RECORDS", 20_000), envInt(t, "RUNNEL_STALL_RUNS", 1)
	addr := startAppBroker(t)
	createTopics(t, addr, 6, "bids", "q5-counts")
	cl := newTestClient(t, addr, kgo.ProducerLinger(5*time.Millisecond))
	epoch := time.UnixMilli(1_700_000_000_000)
	rng := rand.New(rand.NewPCG(21, 21))
	var batch []*kgo.Record
	for i := range records {
		batch = append(batch, &kgo.Record{Topic: "bids", Key: fmt.Appendf(nil, "auction%05d", rng.IntN(1000)),
			Value: make([]byte, 16), Timestamp: epoch.Add(time.Duration(i/10) * time.Millisecond)})
		if len(batch) == 10_000 || i == records-1 {
			if err := cl.ProduceSync(context.Background(), batch...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b := stream.NewBuilder()
	bids := stream.From(b, "bids", serde.String, serde.Bytes).GroupByKey()
	stream.WindowedBy(bids, stream.Hopping(10*time.Second, 2*time.Second, 0)).
		Count(stream.Materialized("auction-counts")).
		ToStream().To("q5-counts")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	for run := range runs {
		reg := prometheus.NewRegistry()
		app := runApp(t, topo, nil, runnel.ApplicationID(fmt.Sprintf("q5-%d", run)), runnel.Brokers(addr),
			runnel.StateDir(t.TempDir()), runnel.StallTimeout(30*time.Second), runnel.MetricsRegisterer(reg))
		start, last, lastAt := time.Now(), int64(-1), time.Now()
		for {
			n := app.Metrics().RecordsProcessed
			if n >= int64(records) {
				break
			}
			if n != last {
				last, lastAt = n, time.Now()
			}
			stalled := sum(series(t, reg, "runnel_stream_task_stalled")) > 0
			if stalled || time.Since(lastAt) > 30*time.Second {
				var stacks strings.Builder
				pprof.Lookup("goroutine").WriteTo(&stacks, 2)
				t.Fatalf("run %d: %d of %d records processed, none for %v (a task reported stalled: %t)\n%s",
					run, n, records, time.Since(lastAt).Round(time.Millisecond), stalled, stacks.String())
			}
			time.Sleep(20 * time.Millisecond) // polling counters, no event to wait on
		}
		if err := app.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("run %d: %d records in %v", run, records, time.Since(start).Round(time.Millisecond))
	}
}

// envInt reads a positive integer from the environment, or def.
func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}
