package broker

import (
	"context"
	"testing"
	"time"
)

// The budget grants in arrival order: a large waiter is not overtaken by
// small ones that would fit, and a waiter whose context ends leaves the
// queue without taking anything.
func TestByteBudgetOrderAndCancel(t *testing.T) {
	bb := newByteBudget(10)
	ctx := context.Background()
	if err := bb.acquire(ctx, 8); err != nil {
		t.Fatal(err)
	}
	big := make(chan error, 1)
	go func() { big <- bb.acquire(ctx, 10) }()
	waitQueued(t, bb, 1)
	small := make(chan error, 1)
	go func() { small <- bb.acquire(ctx, 1) }()
	waitQueued(t, bb, 2)
	select {
	case <-small:
		t.Fatal("a small request overtook the large one queued before it")
	default:
	}

	cctx, cancel := context.WithCancel(ctx)
	gone := make(chan error, 1)
	go func() { gone <- bb.acquire(cctx, 5) }()
	waitQueued(t, bb, 3)
	cancel()
	if err := <-gone; err == nil {
		t.Fatal("cancelled acquire succeeded")
	}

	bb.release(8)
	if err := <-big; err != nil {
		t.Fatal(err)
	}
	bb.release(10)
	if err := <-small; err != nil {
		t.Fatal(err)
	}
	bb.release(1)
	if n := bb.inUse(); n != 0 {
		t.Fatalf("in use %d after every release", n)
	}
}

func waitQueued(t *testing.T, bb *byteBudget, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		bb.mu.Lock()
		q := len(bb.waiters)
		bb.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}
