package log

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// cachePages is the cache's pages in all and free ones.
func cachePages(tc *TailCache) (pages, free int) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.pages, len(tc.free)
}

// TestTailCacheGrowsAhead: the grower keeps a reserve of free pages
// mapped ahead of the appenders, and stops at the budget; an alloc that
// finds nothing free and nothing to recycle waits for it rather than
// fail; Close gives back everything.
func TestTailCacheGrowsAhead(t *testing.T) {
	const budget = 4*tcSlab + 5 // the last slab is short
	tc := NewTailCache(budget * tcPageSize)
	var held []*tcPage
	take := func() {
		t.Helper()
		p := tc.alloc()
		if p == nil {
			pages, free := cachePages(tc)
			t.Fatalf("no page with %d held, %d mapped, %d free (budget %d)", len(held), pages, free, budget)
		}
		held = append(held, p)
	}
	take() // maps the first slab itself, and starts the grower
	tc.grower.Wait()
	if pages, free := cachePages(tc); pages != 3*tcSlab || free != pages-1 {
		t.Fatalf("after one page taken: %d mapped, %d free; want %d mapped ahead", pages, free, 3*tcSlab)
	}
	for len(held) < budget {
		take()
	}
	tc.grower.Wait()
	if pages, free := cachePages(tc); pages != budget || free != 0 {
		t.Fatalf("with every page held: %d mapped, %d free; want the budget, %d", pages, free, budget)
	}
	if p := tc.alloc(); p != nil {
		t.Fatal("a page past the budget")
	}
	tc.unrefAll(held)
	tc.Close()
	if st := tc.Stats(); st.Allocated != 0 {
		t.Fatalf("closed with every page free, the cache still has %d bytes", st.Allocated)
	}
}

// TestTailCacheRecyclesWhileGrowing: while the grower has not delivered,
// appends recycle the oldest pages rather than wait for it or map more
// themselves, and reads get the file's bytes whichever way; once it
// delivers, the cache grows.
func TestTailCacheRecyclesWhileGrowing(t *testing.T) {
	tc := NewTailCache(8 * tcSlab * tcPageSize)
	release := make(chan struct{})
	tc.newSlab = func(n int) ([]byte, func()) {
		<-release
		return mapSlab(n)
	}
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	l := cachedLog(t, tc, testConfig())
	rng := rand.New(rand.NewPCG(31, 32))
	for l.active.w.size < 3*tcSlab*tcPageSize {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 1 + rng.IntN(4), value: 1000 + rng.IntN(30_000), firstTs: 1}))
		if err := l.WaitFlushed(l.EndOffset()); err != nil {
			t.Fatal(err)
		}
		if l.active.dio.failed {
			t.Skip("no O_DIRECT on this file system: nothing is cached")
		}
	}
	st := tc.Stats()
	if st.Allocated != tcSlab*tcPageSize || st.Cached > st.Allocated || st.Cached == 0 {
		t.Fatalf("with the grower held up: %+v; want the first slab only, recycled", st)
	}
	read := readEverything(t, l)
	if want := segmentBytes(t, l); !bytes.Equal(read, want) {
		t.Fatal("reads across recycled pages differ from the file")
	}

	close(release)
	tc.grower.Wait()
	if pages, _ := cachePages(tc); pages <= tcSlab {
		t.Fatalf("the grower delivered, yet the cache has %d pages", pages)
	}
	checkInvariants(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	tc.Close()
	if st := tc.Stats(); st.Allocated != 0 {
		t.Fatalf("closed with every page free, the cache still has %d bytes", st.Allocated)
	}
}
