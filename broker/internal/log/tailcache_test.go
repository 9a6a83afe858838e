package log

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// fileBytes reads [pos, pos+n) of the file of the segment holding a
// region, the truth the cache must agree with.
func fileBytes(t testing.TB, l *Log, base, pos, n int64) []byte {
	t.Helper()
	l.mu.RLock()
	var s *segment
	for _, c := range l.segments {
		if c.base == base {
			s = c
		}
	}
	l.mu.RUnlock()
	if s == nil {
		t.Fatalf("no segment at %d", base)
	}
	// What the cache holds for the file (write-back) goes there first,
	// as a flush would write it.
	if err := s.writePending(); err != nil {
		t.Fatalf("write back segment %d: %v", base, err)
	}
	b := make([]byte, n)
	if _, err := s.f.ReadAt(b, pos); err != nil {
		t.Fatalf("segment %d [%d, +%d): %v", base, pos, n, err)
	}
	return b
}

// wholeBatches checks, off the test's goroutine, that recs are whole
// batches with valid CRCs, the first holding off: "" or what is wrong.
func wholeBatches(recs []byte, off int64) string {
	for p := 0; p < len(recs); {
		h, err := parseHeader(recs[p:])
		switch {
		case err != nil:
			return err.Error()
		case int64(len(recs)-p) < h.size:
			return "partial batch"
		case !crcOK(recs[p : p+int(h.size)]):
			return "bad CRC"
		case p == 0 && (h.baseOffset > off || h.lastOffset() < off):
			return fmt.Sprintf("first batch [%d, %d]", h.baseOffset, h.lastOffset())
		}
		p += int(h.size)
	}
	return ""
}

// cachedLog opens a log that writes directly into tc.
func cachedLog(t *testing.T, tc *TailCache, cfg Config) *Log {
	t.Helper()
	l := openLog(t, t.TempDir(), cfg)
	l.SetDirectWrites(true)
	l.SetTailCache(tc)
	return l
}

// TestTailCacheServesTheTail: a region of what was just appended comes
// from memory with the file's bytes, and once the cache has moved on, a
// region of the same batches comes from the file, with the same bytes.
func TestTailCacheServesTheTail(t *testing.T) {
	tc := testTailCache(t, 8*tcPageSize)
	l := cachedLog(t, tc, testConfig())
	l.SetDirectReads(nil) // what the cache no longer holds comes from the file
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20 {
		mustAppend(t, l, directTestBatch(t, rng))
	}
	if l.active.dio.failed {
		t.Skip("no O_DIRECT on this file system: nothing is cached")
	}
	end := l.EndOffset()
	res, err := l.ReadRegion(end-1, 1<<20, end, nil)
	if err != nil || res.Region == nil {
		t.Fatalf("ReadRegion of the last batch: %v", err)
	}
	r := res.Region
	if r.Mem() == nil || r.File() != nil {
		t.Fatalf("the last batch's region is not in memory (stats %+v)", tc.Stats())
	}
	got := regionBytes(t, r)
	if want := fileBytes(t, l, l.active.base, r.Pos, r.Len); !bytes.Equal(got, want) {
		t.Fatal("the cached region differs from the file")
	}
	r.Release()
	if st := tc.Stats(); st.HitBytes < r.Len {
		t.Fatalf("hits %d bytes, want at least %d", st.HitBytes, r.Len)
	}

	// Twice the cache's size more: the first batches are no longer
	// cached, and are read from the file.
	for tc.Stats().Cached == 0 || l.active.w.size < 3*8*tcPageSize {
		mustAppend(t, l, directTestBatch(t, rng))
	}
	res, err = l.ReadRegion(0, 1, end, nil)
	if err != nil || res.Region == nil {
		t.Fatalf("ReadRegion at 0: %v", err)
	}
	if res.Region.File() == nil {
		t.Fatal("the first batch is still in memory past the cache's budget")
	}
	res.Region.Release()
	if st := tc.Stats(); st.Allocated > 8*tcPageSize || st.Cached > st.Allocated || st.MissBytes == 0 {
		t.Fatalf("stats %+v: over the budget, or no miss counted", st)
	}
}

// TestTailCacheRegionOutlivesEviction: the memory of a region handed out
// is not reused while it is held, however much is appended meanwhile (to
// this log or another sharing the cache), and is reused once released.
func TestTailCacheRegionOutlivesEviction(t *testing.T) {
	tc := testTailCache(t, 4*tcPageSize)
	a, b := cachedLog(t, tc, testConfig()), cachedLog(t, tc, testConfig())
	rng := rand.New(rand.NewPCG(9, 10))
	small := func() []byte {
		return makeBatch(t, batchSpec{n: 1 + rng.IntN(3), value: 1 + rng.IntN(9000), firstTs: 1})
	}
	for a.active.w.size < 2*tcPageSize {
		mustAppend(t, a, small())
	}
	if a.active.dio.failed {
		t.Skip("no O_DIRECT on this file system: nothing is cached")
	}
	res, err := a.ReadRegion(0, 1<<30, a.EndOffset(), nil)
	if err != nil || res.Region == nil || res.Region.Mem() == nil {
		t.Fatalf("ReadRegion: %v, region %+v (stats %+v)", err, res.Region, tc.Stats())
	}
	held := res.Region
	want := regionBytes(t, held)
	for range 50 {
		mustAppend(t, b, directTestBatch(t, rng))
		mustAppend(t, a, directTestBatch(t, rng))
	}
	if got := regionBytes(t, held); !bytes.Equal(got, want) {
		t.Fatal("a held region's memory was reused")
	}
	if st := tc.Stats(); st.Allocated > 4*tcPageSize {
		t.Fatalf("allocated %d bytes, budget %d", st.Allocated, 4*tcPageSize)
	}
	held.Release()
	held.Release() // twice is a no-op
	tc.mu.Lock()
	free, cached := len(tc.free), tc.fifo.Len()+tc.parked
	tc.mu.Unlock()
	if free+cached != tc.pages {
		t.Fatalf("%d pages free and %d cached of %d: a page leaked", free, cached, tc.pages)
	}

	// Closing the cache under a held region leaves its memory alone.
	end := a.EndOffset()
	res, err = a.ReadRegion(end-1, 1<<20, end, nil)
	if err != nil || res.Region == nil || res.Region.Mem() == nil {
		t.Fatalf("ReadRegion of the last batch: %v (stats %+v)", err, tc.Stats())
	}
	want = regionBytes(t, res.Region)
	for _, l := range []*Log{a, b} {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	tc.Close()
	if got := regionBytes(t, res.Region); !bytes.Equal(got, want) {
		t.Fatal("closing the cache changed a held region")
	}
	res.Region.Release()
	if p := tc.alloc(); p != nil {
		t.Fatal("a closed cache handed out a page")
	}
}

// TestTailCacheMatchesFiles appends random batches to three logs sharing
// a cache of a few pages, switching between direct and buffered writes
// and rolling segments, while readers read regions and copies at random
// offsets: every byte read, cached or not, is the file's.
func TestTailCacheMatchesFiles(t *testing.T) {
	tc := testTailCache(t, 6*tcPageSize)
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	logs := []*Log{cachedLog(t, tc, cfg), cachedLog(t, tc, cfg), cachedLog(t, tc, cfg)}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan string, 16)
	for i, l := range logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 11))
			for {
				select {
				case <-stop:
					return
				default:
				}
				end := l.EndOffset()
				if end == 0 {
					continue
				}
				off := rng.Int64N(end)
				if rng.IntN(2) == 0 {
					res, err := l.ReadRegion(off, int32(rng.IntN(300_000)), end, nil)
					if err != nil || res.Region == nil {
						errs <- fmt.Sprintf("ReadRegion(%d) of [0, %d): %v, region %v", off, end, err, res.Region)
						return
					}
					got, err := res.Region.Bytes()
					res.Region.Release()
					if msg := wholeBatches(got, off); err != nil || msg != "" {
						errs <- fmt.Sprintf("region at %d: %v %s", off, err, msg)
						return
					}
					continue
				}
				rr, err := l.Read(off, int32(rng.IntN(300_000)), end)
				if err != nil || len(rr.Records) == 0 {
					errs <- fmt.Sprintf("Read(%d) of [0, %d): %v, %d bytes", off, end, err, len(rr.Records))
					return
				}
				if msg := wholeBatches(rr.Records, off); msg != "" {
					errs <- fmt.Sprintf("read at %d: %s", off, msg)
					return
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(12, 13))
	for range 300 {
		l := logs[rng.IntN(len(logs))]
		l.SetDirectWrites(rng.IntN(5) != 0)
		mustAppend(t, l, directTestBatch(t, rng))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	// Every region now, cached or not, against the file.
	for _, l := range logs {
		for off := int64(0); off < l.EndOffset(); {
			res, err := l.ReadRegion(off, 1<<20, l.EndOffset(), nil)
			if err != nil || res.Region == nil {
				t.Fatalf("ReadRegion at %d: %v", off, err)
			}
			r := res.Region
			l.mu.RLock()
			base := l.segments[l.segmentForLocked(off)].base
			l.mu.RUnlock()
			if got, want := regionBytes(t, r), fileBytes(t, l, base, r.Pos, r.Len); !bytes.Equal(got, want) {
				t.Fatalf("region at %d (in memory: %t) differs from the file", off, r.Mem() != nil)
			}
			r.Release()
			off = r.Next
		}
		checkInvariants(t, l)
	}
	st := tc.Stats()
	if logs[0].active.dio.failed {
		t.Skip("no O_DIRECT on this file system: nothing was cached")
	}
	if st.HitBytes == 0 || st.MissBytes == 0 {
		t.Fatalf("stats %+v: the readers should have both hit and missed", st)
	}
	for _, l := range logs {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	tc.mu.Lock()
	if tc.fifo.Len() != 0 || tc.parked != 0 || len(tc.free) != tc.pages {
		t.Fatalf("after Close: %d pages cached, %d parked, %d of %d free", tc.fifo.Len(), tc.parked, len(tc.free), tc.pages)
	}
	tc.mu.Unlock()
	tc.Close()
	if st := tc.Stats(); st.Allocated != 0 {
		t.Fatalf("closed with every page free, the cache still has %d bytes", st.Allocated)
	}
}
