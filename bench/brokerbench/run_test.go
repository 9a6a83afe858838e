package main

import (
	"context"
	"errors"
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
