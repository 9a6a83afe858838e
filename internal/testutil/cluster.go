package testutil

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/freeport"
)

// Cluster timings for tests, short so failures are detected in seconds:
// a silent broker is fenced after SessionTimeout (it heartbeats every
// Heartbeat), and a follower that stops fetching leaves the ISR after
// ReplicaLag.
const (
	SessionTimeout = 3 * time.Second
	Heartbeat      = 300 * time.Millisecond
	ReplicaLag     = 4 * time.Second
)

// StartCluster starts n brokers in this process, all voters of the
// controller quorum, on free loopback ports, and returns them by node id
// - 1. edit, if not nil, changes broker i's configuration before it
// starts. The brokers close when the test ends (a test may close one
// earlier: Close is idempotent), then their data directories go.
func StartCluster(t testing.TB, n int, edit func(i int, cfg *broker.Config)) []*broker.Broker {
	t.Helper()
	ports, err := freeport.Addrs(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	var quorum []string
	for i := range n {
		quorum = append(quorum, fmt.Sprintf("%d@%s", i+1, ports[2*i+1]))
	}
	// The data dirs first: cleanups run last registered first, and the
	// brokers must close before their dirs go.
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	brokers := make([]*broker.Broker, n)
	t.Cleanup(func() {
		for _, b := range brokers {
			if b != nil {
				if err := b.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			}
		}
	})
	// Generous: a busy 2-core machine elects and registers slowly.
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	errs := make(chan error, n)
	for i := range n {
		id := int32(i + 1)
		cfg := broker.Config{
			NodeID: id, DataDir: dirs[i], Listen: ports[2*i], ControllerQuorum: strings.Join(quorum, ","),
			OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1, GroupInitialRebalanceDelay: -1,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", id),
		}
		if edit != nil {
			edit(i, &cfg)
		}
		go func() {
			var err error
			brokers[i], err = broker.Start(ctx, cfg)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return brokers
}
