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

// closeFreed releases the pages held, closes tc and fails unless it gave
// back every byte.
func closeFreed(t *testing.T, tc *TailCache, held []*tcPage) {
	t.Helper()
	tc.unrefAll(held)
	tc.Close()
	if st := tc.Stats(); st.Allocated != 0 {
		t.Fatalf("closed with every page free, the cache still has %d bytes", st.Allocated)
	}
}

// TestTailCacheGrowsAhead: the grower keeps a reserve of free pages
// mapped ahead of the appenders, and stops at the budget; an alloc that
// finds nothing free and nothing to recycle waits for it rather than
// fail; Close gives back everything.
func TestTailCacheGrowsAhead(t *testing.T) {
	const budget = 4*tcSlab + 5 // the last slab is short
	tc := testTailCache(t, budget*tcPageSize)
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
	closeFreed(t, tc, held)
}

// TestTailCacheGrowsWhileTheGrowerLags: while the grower has not
// delivered, appends map what they need themselves, up to the budget
// less what the grower is mapping, and recycle only past that, so the
// cache does not stay small behind a slow grower; reads get the file's
// bytes whichever way; once the grower delivers, the cache is at its
// budget and no further.
func TestTailCacheGrowsWhileTheGrowerLags(t *testing.T) {
	const budget = 4 * tcSlab
	tc := testTailCache(t, budget*tcPageSize)
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
	for l.active.w.size < 6*tcSlab*tcPageSize {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 1 + rng.IntN(4), value: 1000 + rng.IntN(30_000), firstTs: 1}))
		if err := l.WaitFlushed(l.EndOffset()); err != nil {
			t.Fatal(err)
		}
		if l.active.dio.failed {
			t.Skip("no O_DIRECT on this file system: nothing is cached")
		}
	}
	st := tc.Stats()
	if st.Allocated != (budget-tcSlab)*tcPageSize || st.Cached > st.Allocated || st.Cached < st.Allocated/2 {
		t.Fatalf("with the grower held up: %+v; want %d pages mapped by the appends and cached", st, budget-tcSlab)
	}
	read := readEverything(t, l)
	if want := segmentBytes(t, l); !bytes.Equal(read, want) {
		t.Fatal("reads across recycled pages differ from the file")
	}

	close(release)
	tc.grower.Wait()
	if pages, _ := cachePages(tc); pages != budget {
		t.Fatalf("the grower delivered: %d pages, want the budget, %d", pages, budget)
	}
	checkInvariants(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	closeFreed(t, tc, nil)
}
