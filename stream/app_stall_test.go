package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/stream"
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
	opts := func() []stream.AppOption {
		return []stream.AppOption{stream.ApplicationID("first"), stream.Brokers(addr),
			stream.StateDir(t.TempDir()), stream.ProcessingGuarantee(stream.AtLeastOnce),
			stream.CommitInterval(30 * time.Second)}
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
