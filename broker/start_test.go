package broker_test

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runnel-dev/runnel/broker"
)

// A start-up that fails at its last step closes everything it opened:
// the data directory (its metadata store and logs) opens again at once,
// and no goroutine of the failed broker is left.
func TestStartFailureClosesWhatItOpened(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	// The metrics listener comes last: make it fail.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := broker.Config{DataDir: dir, Listen: "127.0.0.1:0", MetricsListen: taken.Addr().String()}
	if b, err := broker.Start(ctx, cfg); err == nil {
		b.Close()
		t.Fatal("started with the metrics address taken")
	}
	cfg.MetricsListen = ""
	b, err := broker.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start again on the same data dir: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}
