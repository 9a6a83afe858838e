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
	tc := NewTailCache(budget * tcPageSize)
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
	tc.unrefAll(held)
	tc.Close()
	if st := tc.Stats(); st.Allocated != 0 {
		t.Fatalf("closed with every page free, the cache still has %d bytes", st.Allocated)
	}
}

// TestTailCachePrefaultWaitsForIdle: while appends take pages the
// prefaulter maps nothing beyond what they need, and it goes on once a
// whole idle interval passes without a page taken.
func TestTailCachePrefaultWaitsForIdle(t *testing.T) {
	const budget = 6 * tcSlab
	tc := NewTailCache(budget * tcPageSize)
	tick := make(chan time.Time) // unbuffered: a send returns once the prefaulter waits for it
	tc.idleTick = tick
	tc.othersIdle = quiet
	// The first mapping is the prefaulter's, the second the grower's
	// (below), the third the prefaulter's once idle: the first and the
	// third wait for the test.
	mapping := []chan struct{}{make(chan struct{}), nil, make(chan struct{})}
	release := []chan struct{}{make(chan struct{}), nil, make(chan struct{})}
	calls := 0
	tc.newSlab = func(n int) ([]byte, func()) {
		if calls++; calls <= len(mapping) && mapping[calls-1] != nil {
			close(mapping[calls-1])
			<-release[calls-1]
		}
		return mapSlab(n)
	}
	defer func() {
		for _, r := range release {
			select {
			case <-r:
			default:
				if r != nil {
					close(r)
				}
			}
		}
	}()
	tc.Prefault()
	<-mapping[0] // the prefaulter maps its first slab, the cache idle

	// An append comes meanwhile and maps a slab of its own (the budget
	// allows it beside the prefaulter's). Once the prefaulter's slab is
	// in, the free pages are one short of the appends' reserve, so the
	// grower maps another.
	held := []*tcPage{tc.alloc()}
	close(release[0])
	send := func(what string) {
		t.Helper()
		select {
		case tick <- time.Time{}:
		case <-time.After(10 * time.Second):
			pages, _ := cachePages(tc)
			t.Fatalf("%s: the prefaulter did not wait for an idle interval (%d pages mapped, %d slabs asked for)", what, pages, calls)
		}
	}
	// Let the grower deliver, so that nothing but the appends' pages
	// keeps the prefaulter from mapping. The prefaulter's slab is in,
	// so it has looked at the takes (under the same lock) and waits.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		tc.mu.Lock()
		pages, growing := tc.pages, tc.growing
		tc.mu.Unlock()
		if growing == 0 && pages == 3*tcSlab {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the grower did not fill the reserve: %d pages, %d mapping", pages, growing)
		}
	}
	// Another append within the interval keeps the cache busy.
	held = append(held, tc.alloc())
	send("busy")
	// This send returns once the prefaulter is back waiting: it mapped
	// nothing on the busy interval.
	send("after the busy interval")

	// Idle now: it maps its next slab, once the grower is done.
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case <-mapping[2]:
		case tick <- time.Time{}:
			continue
		case <-time.After(time.Until(deadline)):
			pages, _ := cachePages(tc)
			t.Fatalf("idle, the prefaulter mapped nothing (%d pages)", pages)
		}
		break
	}
	if pages, _ := cachePages(tc); pages != 3*tcSlab {
		t.Fatalf("before the idle interval's slab: %d pages mapped; want 3 slabs (the append's, the prefaulter's first, the grower's)", pages)
	}
	close(release[2])
	// Still idle: it goes on to the budget, without waiting for more
	// ticks, and stops there.
	tc.grower.Wait()
	if pages, _ := cachePages(tc); pages != budget {
		t.Fatalf("idle: %d pages mapped, want the budget, %d", pages, budget)
	}
	tc.unrefAll(held)
	tc.Close()
	if st := tc.Stats(); st.Allocated != 0 {
		t.Fatalf("closed with every page free, the cache still has %d bytes", st.Allocated)
	}
}

// TestTailCachePrefaultClose: Close while the prefaulter maps waits for
// the slab under way, gives it back, and stops it; Close while it waits
// for an idle interval ends the wait.
func TestTailCachePrefaultClose(t *testing.T) {
	const budget = 4 * tcSlab
	tc := NewTailCache(budget * tcPageSize)
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

	tc = NewTailCache(budget * tcPageSize)
	tc.idleTick = make(chan time.Time) // never ticks
	tc.othersIdle = quiet
	p := tc.alloc() // busy: the prefaulter will wait
	tc.Prefault()
	tc.unrefAll([]*tcPage{p})
	tc.Close() // would hang if the wait did not end
	if st := tc.Stats(); st.Allocated != 0 {
		t.Fatalf("closed while the prefaulter waited: %d bytes kept", st.Allocated)
	}
}

// TestTailCachePrefaultWaitsForCPU: while the process's other threads
// are busy (a broker serving consumers from its cache takes no pages),
// the prefaulter maps nothing; it goes on once they are quiet, and is
// told how long each look covered.
func TestTailCachePrefaultWaitsForCPU(t *testing.T) {
	const budget = 2 * tcSlab
	tc := NewTailCache(budget * tcPageSize)
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
	stop := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case <-looks:
			case tick <- time.Time{}:
			case <-stop:
				return
			}
		}
	}()
	tc.grower.Wait()
	close(stop)
	<-drained
	if pages, _ := cachePages(tc); pages != budget {
		t.Fatalf("quiet: %d pages mapped, want the budget, %d", pages, budget)
	}
	tc.Close()
}
