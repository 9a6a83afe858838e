package broker_test

import (
	"runtime/debug"
	"testing"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Config.MemoryLimit is the Go runtime's memory limit while the broker
// runs, and the limit before it is back once the broker is closed; 0
// leaves the runtime alone.
func TestMemoryLimitSetAndRestored(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	const limit = 3 << 30
	b := testutil.StartBroker(t, broker.Config{MemoryLimit: limit})
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Fatalf("memory limit while running: %d, want %d", got, limit)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("memory limit after Close: %d, want %d as before", got, before)
	}

	b = testutil.StartBroker(t, broker.Config{})
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("memory limit with MemoryLimit 0: %d, want %d untouched", got, before)
	}
	b.Close()

	cfg := broker.Config{DataDir: t.TempDir(), MemoryLimit: -1}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err == nil {
		t.Fatal("a negative memory limit passed Validate")
	}
	cfg.MemoryLimit = 0
	if got := cfg.DerivedMemoryLimit(); got != 1<<30 {
		t.Fatalf("derived memory limit with the default budgets: %d, want 1 GiB", got)
	}
}
