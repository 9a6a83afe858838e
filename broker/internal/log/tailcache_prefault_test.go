package log

import (
	"sync/atomic"
	"testing"
	"time"
)

// quiet stands for a process whose other threads use no CPU.
func quiet(time.Duration) bool { return true }

// TestTailCachePrefaultIdle: an idle cache that prefaults maps its whole
// budget, a slab at a time, before any page is asked for; the appends
// that follow take those pages without mapping more.
func TestTailCachePrefaultIdle(t *testing.T) {
	const budget = 3*tcSlab + 7 // the last slab is short
	tc := testTailCache(t, budget*tcPageSize)
	tc.othersIdle = quiet
	slabs := 0
	tc.newSlab = func(n int) ([]byte, func()) {
		slabs++ // one mapping at a time, under the cache's growing
		return mapSlab(n)
	}
	tc.Prefault()
	tc.grower.Wait() // the prefaulter stops at the budget
	if pages, free := cachePages(tc); pages != budget || free != budget || slabs != 4 {
		t.Fatalf("prefaulted: %d mapped, %d free in %d slabs; want the budget, %d, free in 4", pages, free, slabs, budget)
	}
	var held []*tcPage
	for len(held) < budget {
		p := tc.alloc()
		if p == nil {
			t.Fatalf("no page with %d of %d held", len(held), budget)
		}
		held = append(held, p)
	}
	if p := tc.alloc(); p != nil {
		t.Fatal("a page past the budget")
	}
	tc.grower.Wait()
	if pages, _ := cachePages(tc); pages != budget || slabs != 4 {
		t.Fatalf("taking the prefaulted pages mapped more: %d pages in %d slabs", pages, slabs)
	}
	closeFreed(t, tc, held)
}

// TestTailCachePrefaultWaitsForIdle: while appends take pages or readers
// read through the cache, the prefaulter maps nothing beyond what the
// appends need, and it goes on once a whole interval passes without
// either.
func TestTailCachePrefaultWaitsForIdle(t *testing.T) {
	const budget = 6 * tcSlab
	tc := testTailCache(t, budget*tcPageSize)
	tick := make(chan time.Time)
	tc.idleTick = tick
	// Each look stops in othersIdle until the test lets it go on, so
	// that what the test does in between is what the look sees.
	looks := make(chan struct{})
	proceed := make(chan struct{})
	tc.othersIdle = func(time.Duration) bool {
		looks <- struct{}{}
		<-proceed
		return true
	}
	state := func() (pages, growing int) {
		tc.mu.Lock()
		defer tc.mu.Unlock()
		return tc.pages, tc.growing
	}
	look := func(what string) {
		t.Helper()
		select {
		case <-looks:
		case <-time.After(10 * time.Second):
			pages, _ := state()
			t.Fatalf("%s: no look (%d pages mapped)", what, pages)
		}
	}
	// next lets the prefaulter's interval end and waits for its look;
	// the send is taken only by a prefaulter waiting out an interval,
	// so one that mapped instead fails here.
	next := func(what string) {
		t.Helper()
		select {
		case tick <- time.Time{}:
		case <-time.After(10 * time.Second):
			pages, _ := state()
			t.Fatalf("%s: the prefaulter did not wait for an interval (%d pages mapped)", what, pages)
		}
		look(what)
	}
	growerDone := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			pages, growing := state()
			if growing == 0 && pages == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the grower: %d pages, %d mapping; want %d", pages, growing, want)
			}
		}
	}

	tc.Prefault()
	look("start")
	proceed <- struct{}{} // idle: it maps a slab, and the grower one more for the reserve
	look("after the first slab")
	growerDone(2 * tcSlab)
	// An append: it takes a page, and the grower tops up the reserve.
	held := []*tcPage{tc.alloc()}
	growerDone(3 * tcSlab)
	proceed <- struct{}{}
	next("after an append")
	if pages, _ := state(); pages != 3*tcSlab {
		t.Fatalf("after an append: %d pages mapped, want 3 slabs", pages)
	}
	// A read through the cache (a consumer served from it takes no
	// pages), then one past it.
	for _, hit := range []bool{true, false} {
		tc.count(hit, 4096)
		proceed <- struct{}{}
		next("after a read")
		if pages, _ := state(); pages != 3*tcSlab {
			t.Fatalf("after a read (hit %v): %d pages mapped, want 3 slabs", hit, pages)
		}
	}
	// Idle from here: it maps the rest without waiting for intervals,
	// looking after each slab.
	answerUntilDone(tc, looks, proceed, struct{}{})
	if pages, _ := state(); pages != budget {
		t.Fatalf("idle: %d pages mapped, want the budget, %d", pages, budget)
	}
	closeFreed(t, tc, held)
}

// TestTailCachePrefaultClose: Close while the prefaulter maps waits for
// the slab under way, gives it back, and stops it; Close while it waits
// for an idle interval ends the wait.
func TestTailCachePrefaultClose(t *testing.T) {
	const budget = 4 * tcSlab
	tc := testTailCache(t, budget*tcPageSize)
	tc.othersIdle = quiet
	second := make(chan struct{})
	release := make(chan struct{})
	calls := 0
	tc.newSlab = func(n int) ([]byte, func()) {
		if calls++; calls == 2 {
			close(second)
			<-release
		}
		return mapSlab(n)
	}
	tc.Prefault()
	<-second
	closed := make(chan struct{})
	go func() {
		tc.Close()
		close(closed)
	}()
	close(release)
	<-closed
	if st := tc.Stats(); st.Allocated != 0 || calls != 2 {
		t.Fatalf("closed while prefaulting: %d bytes kept, %d slabs asked for; want 0 and 2", st.Allocated, calls)
	}

	tc = testTailCache(t, budget*tcPageSize)
	tc.idleTick = make(chan time.Time) // never ticks
	tc.othersIdle = quiet
	p := tc.alloc() // busy: the prefaulter will wait
	tc.Prefault()
	tc.unrefAll([]*tcPage{p})
	tc.Close() // would hang if the wait did not end
	if st := tc.Stats(); st.Allocated != 0 {
		t.Fatalf("closed while the prefaulter waited: %d bytes kept", st.Allocated)
	}
	tc.Close() // again: nothing more to do
}

// TestTailCachePrefaultWaitsForCPU: while the process's other threads
// are busy (a broker serving consumers from its cache takes no pages),
// the prefaulter maps nothing; it goes on once they are quiet, and is
// told how long each look covered.
func TestTailCachePrefaultWaitsForCPU(t *testing.T) {
	const budget = 2 * tcSlab
	tc := testTailCache(t, budget*tcPageSize)
	tick := make(chan time.Time)
	tc.idleTick = tick
	looks := make(chan time.Duration)
	var busy atomic.Bool
	busy.Store(true)
	tc.othersIdle = func(elapsed time.Duration) bool {
		looks <- elapsed
		return !busy.Load()
	}
	look := func(what string) time.Duration {
		t.Helper()
		select {
		case d := <-looks:
			return d
		case <-time.After(10 * time.Second):
			pages, _ := cachePages(tc)
			t.Fatalf("%s: the prefaulter did not look (%d pages mapped)", what, pages)
			return 0
		}
	}
	send := func(what string) {
		t.Helper()
		select {
		case tick <- time.Time{}:
		case <-time.After(10 * time.Second):
			pages, _ := cachePages(tc)
			t.Fatalf("%s: the prefaulter did not wait for an interval (%d pages mapped)", what, pages)
		}
	}
	tc.Prefault()
	look("first") // finds the process busy
	for range 3 {
		send("busy")
		if elapsed := look("busy"); elapsed <= 0 {
			t.Fatalf("a look after an interval was told it covered %v", elapsed)
		}
	}
	if pages, _ := cachePages(tc); pages != 0 {
		t.Fatalf("busy: the prefaulter mapped %d pages", pages)
	}
	send("busy")
	busy.Store(false)
	look("quiet")
	// Quiet from here: every look lets it map, until the budget (it
	// waits out an interval while the grower fills the reserve).
	answerUntilDone(tc, looks, tick, time.Time{})
	if pages, _ := cachePages(tc); pages != budget {
		t.Fatalf("quiet: %d pages mapped, want the budget, %d", pages, budget)
	}
	tc.Close()
}

// answerUntilDone answers the prefaulter's test hooks, taking every look
// it reports and sending v on feed whenever it waits there, until it and
// the grower have exited.
func answerUntilDone[L, F any](tc *TailCache, looks <-chan L, feed chan<- F, v F) {
	stop := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case <-looks:
			case feed <- v:
			case <-stop:
				return
			}
		}
	}()
	tc.grower.Wait()
	close(stop)
	<-drained
}
