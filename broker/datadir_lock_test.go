package broker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"

	"github.com/runnel-dev/runnel/broker"
)

// TestDataDirInUse starts a second broker on the data dir of a running
// one: it fails at once, naming the dir and the pid that holds it, and
// starts once the first broker has closed.
func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	first, err := broker.Start(testContext(t), broker.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	// Before the lock, the second broker blocked on the metadata
	// store's file lock, deaf to its context: bound the wait here so
	// that a regression fails rather than hangs.
	type started struct {
		b   *broker.Broker
		err error
	}
	res := make(chan started, 1)
	go func() {
		b, err := broker.Start(context.Background(), broker.Config{DataDir: dir, Listen: "127.0.0.1:0"})
		res <- started{b, err}
	}()
	var second started
	select {
	case second = <-res:
	case <-time.After(20 * time.Second):
		t.Fatal("a second broker on a data dir in use did not fail within 20s")
	}
	if second.err == nil {
		second.b.Close()
		t.Fatal("a second broker started on a data dir in use")
	}
	var inUse *broker.DataDirInUseError
	if !errors.As(second.err, &inUse) || inUse.PID != os.Getpid() {
		t.Fatalf("second broker: %v, want a DataDirInUseError naming pid %d", second.err, os.Getpid())
	}
	want := fmt.Sprintf("data dir %s is in use by another broker (pid %d)", dir, os.Getpid())
	if got := second.err.Error(); got != "broker: "+want {
		t.Fatalf("second broker: %q, want %q", got, "broker: "+want)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.StartBroker(t, broker.Config{DataDir: dir})
}

// TestStartHonoursContext starts a broker with a context already done: it
// returns the context's error rather than a broker, and the data dir is
// free again.
func TestStartHonoursContext(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b, err := broker.Start(ctx, broker.Config{DataDir: dir, Listen: "127.0.0.1:0"}); err == nil {
		b.Close()
		t.Fatal("Start with a done context started a broker")
	} else if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a done context: %v, want context.Canceled", err)
	}
	testutil.StartBroker(t, broker.Config{DataDir: dir})
}
