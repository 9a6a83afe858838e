package broker

import (
	"context"
	"sync"
)

// byteBudget is the broker-wide budget for bytes held by requests read
// but not yet answered (queued.max.request.bytes). Readers take from it
// before buffering a frame and wait, in arrival order, while it is spent;
// writers give back once the response is written. Waiting in order keeps
// a stream of small requests from starving a large one.
type byteBudget struct {
	total int64

	mu sync.Mutex // guards the following
	// avail is what is left. Invariant: 0 <= avail <= total.
	avail   int64
	waiters []*budgetWaiter // FIFO
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed once n is granted
}

func newByteBudget(total int64) *byteBudget {
	return &byteBudget{total: total, avail: total}
}

// acquire takes n bytes, waiting until they are free or ctx ends. n must
// not exceed the total (the caller refuses such a frame outright).
func (bb *byteBudget) acquire(ctx context.Context, n int64) error {
	bb.mu.Lock()
	if len(bb.waiters) == 0 && bb.avail >= n {
		bb.avail -= n
		bb.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	bb.waiters = append(bb.waiters, w)
	bb.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		bb.mu.Lock()
		defer bb.mu.Unlock()
		select {
		case <-w.ready:
			// Granted meanwhile: hand it back.
			bb.releaseLocked(n)
		default:
			for i, x := range bb.waiters {
				if x == w {
					bb.waiters = append(bb.waiters[:i], bb.waiters[i+1:]...)
					break
				}
			}
			bb.grantLocked()
		}
		return ctx.Err()
	}
}

// release gives back n bytes taken by acquire.
func (bb *byteBudget) release(n int64) {
	if n == 0 {
		return
	}
	bb.mu.Lock()
	bb.releaseLocked(n)
	bb.mu.Unlock()
}

// REQUIRES: bb.mu held.
func (bb *byteBudget) releaseLocked(n int64) {
	bb.avail += n
	bb.grantLocked()
}

// grantLocked wakes the waiters at the head of the queue that now fit.
// REQUIRES: bb.mu held.
func (bb *byteBudget) grantLocked() {
	for len(bb.waiters) > 0 && bb.waiters[0].n <= bb.avail {
		w := bb.waiters[0]
		bb.waiters = bb.waiters[1:]
		bb.avail -= w.n
		close(w.ready)
	}
}

// inUse reports the bytes currently taken.
func (bb *byteBudget) inUse() int64 {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	return bb.total - bb.avail
}
