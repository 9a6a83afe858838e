package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSettleBroker: -settle leaves the broker idle at least that long,
// not at all by default, and gives up when the run is cancelled.
func TestSettleBroker(t *testing.T) {
	r := quickRun(t)
	start := time.Now()
	if err := r.settleBroker(t.Context()); err != nil || time.Since(start) > time.Second {
		t.Fatalf("no -settle: %v after %v", err, time.Since(start))
	}
	r.settle = 300 * time.Millisecond
	start = time.Now()
	if err := r.settleBroker(t.Context()); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < r.settle {
		t.Fatalf("-settle %v waited %v", r.settle, waited)
	}
	r.settle = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.settleBroker(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v, want context.Canceled", err)
	}
}

// crashingPeer is Runnel's broker killed (SIGKILL) once its first
// measured phase has written a MiB to a partition: the producer is under
// way, with the broker's address known.
type crashingPeer struct{ runnelPeer }

func (c *crashingPeer) name() string { return "crashing" }
func (c *crashingPeer) start(ctx context.Context, dir string) (*cluster, error) {
	proc, err := c.runnelPeer.start(ctx, dir)
	if err != nil {
		return nil, err
	}
	p := proc.procs[0]
	go func() {
		for {
			seg := filepath.Join(dir, "data", "logs", "bench-100B-0", "00000000000000000000.log")
			if fi, err := os.Stat(seg); err == nil && fi.Size() >= 1<<20 {
				_ = p.cmd.Process.Kill()
				return
			}
			select {
			case <-p.gone:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return proc, nil
}

// TestMeasureBrokerExits: a broker that dies during a phase fails its run
// at once, saying so, rather than leaving the producer to retry a dead
// address until the run's context ends.
func TestMeasureBrokerExits(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a broker process")
	}
	r := quickRun(t)
	r.workloads = []workload{{name: "100B", size: 100, records: 50_000_000}}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	peer := &crashingPeer{runnelPeer{binDir: t.TempDir(), nodes: 1}}
	start := time.Now()
	r.measure(ctx, peer, t.TempDir(), false)
	res := r.resultFor(peer)
	var gone *errExited
	if !errors.As(res.err, &gone) {
		t.Fatalf("run error %v, want the broker's exit", res.err)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("failed after %v, want soon after the exit", took)
	}
}
