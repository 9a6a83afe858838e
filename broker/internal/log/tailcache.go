package log

import (
	"container/list"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// The tail cache.
//
// Direct writes (direct.go) leave the page cache alone, so on their own
// they make a consumer reading just behind its producers read from the
// disk what was written a moment before. A TailCache keeps the bytes most
// recently appended directly to the logs it serves in memory, up to a
// budget they share, and reads that fall within it come from there: Read
// copies from it, and ReadRegion returns a region of its memory for the
// caller to write to the socket. Past the budget the oldest bytes go
// first, whichever log holds them; a reader further behind reads the
// file, as it would pages the kernel evicted.
//
// A segment's bytes below its published size never change while the
// log is open (truncation happens only to a closed log), and a page
// leaves the cache only once the file holds its bytes: appends of a log
// written back (writeback.go) reach the file at the next flush, the
// others before they are published. So a read that misses, or finds a
// page evicted a moment before, reads the same bytes from the file.
//
// Memory comes in pages of tcPageSize, allocated a slab at a time up to
// the budget, ahead of need and off the append path (tailcache_grow.go),
// and reused from then on (outside the Go heap where the platform
// allows, so the collector neither scans nor paces on it). A
// page is reference counted: the cache holds one reference while the
// page is cached, and each region handed out holds one until released,
// so eviction never recycles memory a connection is still sending.

// SetTailCache makes the log keep what it appends directly in tc (shared
// with other logs), or in no cache when tc is nil. It applies to the
// appends that follow.
func (l *Log) SetTailCache(tc *TailCache) { l.tcache.Store(tc) }

// tailCacheFor returns the segment's cache when the log has a tail cache
// and the append at pos is written directly, making one if need be, and
// the bytes a new run of the cache starts with (runStart). A cache of
// another TailCache (SetTailCache changed it) is written back and
// dropped first; a write through the page cache writes back what is
// pending itself (segment.writeAt).
// REQUIRES: l.appendMu held.
func (l *Log) tailCacheFor(s *segment, pos int64, direct bool) (*segCache, []byte, error) {
	tc := l.tcache.Load()
	sc := s.cache.Load()
	if sc != nil && sc.tc != tc {
		if err := s.writePending(); err != nil {
			return nil, nil, err
		}
		s.dropCache()
		sc = nil
	}
	if tc == nil || !direct {
		return nil, nil, nil
	}
	if !s.dio.open.Load() {
		// Open the direct descriptor now, to know whether direct
		// writes are to be had: bytes written through the page cache
		// are read from there, not cached twice.
		s.wmu.Lock()
		err := s.openDirect()
		s.wmu.Unlock()
		if errors.Is(err, errNoDirect) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if sc == nil {
		sc = &segCache{tc: tc}
		s.cache.Store(sc)
	}
	if sc.continues(pos) {
		return sc, nil, nil
	}
	prefix, err := s.runStart(pos)
	return sc, prefix, err
}

// tcPageSize is the size of a cache page. A page is the unit of
// eviction, and the active segment of each log written directly holds
// one partly filled.
const tcPageSize = 128 << 10

// tcSlab is how many pages are allocated at once.
const tcSlab = 32

// TailCache holds the recently appended bytes of logs written directly;
// see the package's tail cache. Its methods are safe for concurrent use.
type TailCache struct {
	maxPages int

	mu    sync.Mutex // guards the following
	pages int        // pages allocated, free or not
	free  []*tcPage
	fifo  list.List // cached pages, oldest first (Value *tcPage)
	// parked counts the cached pages out of the fifo (tcPage.parked).
	parked int
	// slabs give the memory back (Close).
	slabs  []func()
	closed bool
	// growing is the pages the grower (or the prefaulter) is mapping
	// now, 0 when neither is; grower is done when both have stopped
	// (tailcache_grow.go, tailcache_prefault.go).
	growing int
	grower  sync.WaitGroup
	// grown is signalled when the grower adds pages or stops.
	grown sync.Cond
	// newSlab, when set, maps the grower's slabs instead of
	// mapSlab (tests).
	newSlab func(bytes int) (mem []byte, release func())
	// takes counts the pages alloc has handed out, for the prefaulter
	// to see whether appends are under way (with hits and misses,
	// reads; tailcache_prefault.go);
	// prefaulting is set once it started, stop closed by Close to end
	// its wait; idleTick and othersIdle, when set, replace its timer and
	// its reading of the process's CPU (tests).
	takes       uint64
	prefaulting bool
	stop        chan struct{}
	idleTick    <-chan time.Time
	othersIdle  func(elapsed time.Duration) bool

	hits, misses atomic.Int64

	// ring submits the group commits of the logs that use the cache
	// (ring_linux.go); nil where there is no io_uring.
	ring *commitRing
}

// NewTailCache returns a cache of at most budget bytes (rounded down to
// whole pages). A budget below one page makes a cache that never holds
// anything.
func NewTailCache(budget int64) *TailCache {
	tc := &TailCache{maxPages: int(max(budget, 0) / tcPageSize), ring: newCommitRing()}
	tc.grown.L = &tc.mu
	return tc
}

// TailCacheStats is what a TailCache reports.
type TailCacheStats struct {
	// Allocated is the bytes of memory the cache has taken (it keeps
	// them for reuse); Cached the bytes of the pages holding log data.
	Allocated, Cached int64
	// HitBytes and MissBytes are the bytes reads found in the cache and
	// the bytes they had to read from files instead, for logs it serves.
	HitBytes, MissBytes int64
	// RingWrites is the group commits of logs using the cache that went
	// through its commit ring (ring_linux.go): none where io_uring is
	// missing or refused.
	RingWrites int64
}

// Stats reports the cache's memory and hit counts.
func (tc *TailCache) Stats() TailCacheStats {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return TailCacheStats{
		Allocated:  int64(tc.pages) * tcPageSize,
		Cached:     int64(tc.fifo.Len()+tc.parked) * tcPageSize,
		HitBytes:   tc.hits.Load(),
		MissBytes:  tc.misses.Load(),
		RingWrites: tc.ring.taken(),
	}
}

// Close gives the cache's memory back once every page is free: every log
// using the cache closed (so nothing is cached) and every region
// released. Memory a page is still held in, by a bug, stays mapped
// rather than be pulled from under its reader. The cache takes nothing
// after Close, and its commit ring none: their writes are made without it.
func (tc *TailCache) Close() {
	tc.mu.Lock()
	if tc.stop != nil && !tc.closed {
		close(tc.stop)
	}
	tc.closed = true
	tc.mu.Unlock()
	tc.grower.Wait() // it and the prefaulter give back what they map after Close
	tc.ring.close()
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if len(tc.free) != tc.pages {
		return
	}
	for _, release := range tc.slabs {
		release()
	}
	tc.slabs, tc.free, tc.pages = nil, nil, 0
}

// count adds n bytes read to the hits or the misses.
func (tc *TailCache) count(hit bool, n int64) {
	if hit {
		tc.hits.Add(n)
	} else {
		tc.misses.Add(n)
	}
}

// tcPage is one page of the cache.
type tcPage struct {
	buf []byte
	// pos is the segment file position of buf[0] and owner the segment
	// cache holding the page, set when the page is taken for a segment.
	pos   int64
	owner *segCache
	// elem is the page's place in the cache's fifo while cached.
	// REQUIRES: TailCache.mu held.
	elem *list.Element
	// parked is set while the page is out of the fifo because it holds
	// bytes its file does not have yet. REQUIRES: TailCache.mu held.
	parked bool
	// refs counts the cache's reference, while cached, and the readers'
	// and appender's.
	refs atomic.Int32
}

// alloc returns a page with one reference (the caller's), or nil when
// every page is held by readers or holds bytes not yet written to its
// file. It takes a free page, which the grower maps and faults in ahead
// of need, off the append path (tailcache_grow.go); when the grower has
// fallen behind, it maps a slab itself, as long as the budget allows
// beside what the grower is mapping; past that it recycles the oldest
// cached page, and only with nothing to recycle does it wait for the
// grower. A cache that recycled before reaching its budget would send
// readers to the disk for what the budget could have kept.
func (tc *TailCache) alloc() *tcPage {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for {
		if tc.closed {
			return nil
		}
		if n := len(tc.free); n > 0 {
			p := tc.free[n-1]
			tc.free = tc.free[:n-1]
			p.refs.Store(1)
			tc.takes++
			tc.growAheadLocked()
			return p
		}
		if n := min(tcSlab, tc.maxPages-tc.pages-tc.growing); n > 0 {
			mem, release := allocPages(n * tcPageSize)
			tc.addSlabLocked(mem, release, n)
			continue
		}
		if e := tc.fifo.Front(); e != nil {
			tc.evictLocked(e.Value.(*tcPage))
			continue
		}
		if tc.growing == 0 {
			return nil
		}
		tc.grown.Wait()
	}
}

// addSlabLocked adds n pages of mem, released by release, to the free
// pages. REQUIRES: tc.mu held.
func (tc *TailCache) addSlabLocked(mem []byte, release func(), n int) {
	tc.slabs = append(tc.slabs, release)
	for i := range n {
		tc.free = append(tc.free, &tcPage{buf: mem[i*tcPageSize : (i+1)*tcPageSize : (i+1)*tcPageSize]})
	}
	tc.pages += n
}

// evictLocked takes a cached page out of the cache: out of the fifo, off
// the front of its segment's pages, and its reference given up. A page
// holding bytes its file does not have yet (write-back) cannot go: it is
// parked, out of the fifo, until they are written (segCache.wrote).
// REQUIRES: tc.mu held.
func (tc *TailCache) evictLocked(p *tcPage) {
	tc.fifo.Remove(p.elem)
	p.elem = nil
	sc := p.owner
	sc.mu.Lock()
	if min(p.pos+tcPageSize, sc.end) > sc.written {
		sc.mu.Unlock()
		p.parked = true
		tc.parked++
		return
	}
	// Pages are cached in their segment's order, so the oldest cached
	// page of a segment is its first; a page already dropped from its
	// segment is no longer among them.
	for i, q := range sc.pages {
		if q == p {
			clear(sc.pages[:i+1])
			sc.pages = sc.pages[i+1:]
			break
		}
	}
	sc.mu.Unlock()
	tc.unrefLocked(p)
}

// enqueue makes p, just added to its segment's pages, evictable: the
// caller's reference becomes the cache's.
func (tc *TailCache) enqueue(p *tcPage) {
	tc.mu.Lock()
	p.elem = tc.fifo.PushBack(p)
	tc.mu.Unlock()
}

// requeue puts back in the fifo those of pages that were parked and
// still belong to sc.
func (tc *TailCache) requeue(sc *segCache, pages []*tcPage) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for _, p := range pages {
		if p.parked && p.owner == sc {
			p.parked = false
			tc.parked--
			p.elem = tc.fifo.PushBack(p)
		}
	}
}

// uncache gives up the cache's references to pages a segment dropped.
func (tc *TailCache) uncache(pages []*tcPage) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for _, p := range pages {
		switch {
		case p.elem != nil:
			tc.fifo.Remove(p.elem)
			p.elem = nil
		case p.parked:
			p.parked = false
			tc.parked--
		default:
			continue // evicted meanwhile
		}
		tc.unrefLocked(p)
	}
}

func (tc *TailCache) unrefLocked(p *tcPage) {
	if p.refs.Add(-1) == 0 {
		p.owner = nil
		tc.free = append(tc.free, p)
	}
}

func (tc *TailCache) unref(p *tcPage) {
	if p.refs.Add(-1) == 0 {
		tc.mu.Lock()
		p.owner = nil
		tc.free = append(tc.free, p)
		tc.mu.Unlock()
	}
}

func (tc *TailCache) unrefAll(pages []*tcPage) {
	for _, p := range pages {
		tc.unref(p)
	}
}

// segCache is one segment's cached bytes: a run of the file from
// pages[0].pos to end, page i holding the bytes from pages[0].pos +
// i*tcPageSize. A run starts at a block boundary, so that the pages can
// be written to the file directly. Only the log's appender adds pages
// and moves end; the cache's eviction takes pages off the front.
type segCache struct {
	tc *TailCache

	mu    sync.Mutex // guards the following
	pages []*tcPage
	end   int64
	// written is where the bytes of the run the file does not have yet
	// start: [written, end) is pending (write-back), written >= end when
	// nothing is. Below the run, and past it when nothing is pending,
	// the file holds every byte of the segment.
	written int64
}

// continues reports whether the run ends at pos, so an append there
// extends it.
func (sc *segCache) continues(pos int64) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.pages) > 0 && sc.end == pos
}

// hasPending reports whether the run holds bytes its file does not.
func (sc *segCache) hasPending() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.written < sc.end
}

// pendingBytes is how many bytes the file lacks.
func (sc *segCache) pendingBytes() int64 {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return max(sc.end-sc.written, 0)
}

// add caches b, which goes at pos in the segment and is not yet
// published, and reports whether all of it was cached. It is pending
// until wrote. When the run
// does not end at pos (none yet, or appends written through the page
// cache meanwhile) a new one starts at the block boundary below pos,
// with prefix, the file's bytes from there to pos. The caller has made
// sure nothing is pending then.
//
// When a page cannot be had, or the run's last page was evicted while b
// was copied into it, add returns false; the bytes already copied past
// the old end may be part of the run (and pending) or not.
// REQUIRES: Log.appendMu held.
func (sc *segCache) add(prefix, b []byte, pos int64) bool {
	sc.mu.Lock()
	if len(sc.pages) == 0 || sc.end != pos {
		stale := sc.pages
		sc.pages = nil
		start := pos - int64(len(prefix))
		sc.end, sc.written = start, start
		sc.mu.Unlock()
		sc.tc.uncache(stale)
		if !sc.copyIn(prefix, start) {
			return false
		}
	} else {
		sc.mu.Unlock()
	}
	return sc.copyIn(b, pos)
}

// copyIn appends b at pos, the run's end, to the run's pages.
func (sc *segCache) copyIn(b []byte, pos int64) bool {
	for len(b) > 0 {
		sc.mu.Lock()
		var p *tcPage
		if n := len(sc.pages); n > 0 && sc.end-sc.pages[n-1].pos < tcPageSize {
			p = sc.pages[n-1]
			p.refs.Add(1)
		}
		sc.mu.Unlock()
		fresh := p == nil
		if fresh {
			if p = sc.tc.alloc(); p == nil {
				return false
			}
			p.pos, p.owner = pos, sc
		}
		// Bytes past end are read by nobody, so they are written
		// without the lock.
		n := copy(p.buf[pos-p.pos:], b)
		ok := true
		sc.mu.Lock()
		switch {
		case fresh:
			sc.pages = append(sc.pages, p)
			sc.end = pos + int64(n)
		case len(sc.pages) > 0 && sc.pages[len(sc.pages)-1] == p:
			sc.end = pos + int64(n)
		default:
			// Evicted while being filled, and every page before it
			// with it (all written, or they could not have been).
			ok = false
		}
		sc.mu.Unlock()
		if fresh {
			sc.tc.enqueue(p)
		} else {
			sc.tc.unref(p)
		}
		if !ok {
			return false
		}
		pos += int64(n)
		b = b[n:]
	}
	return true
}

// pending returns the bytes to write to the file so it holds the whole
// run: from the block boundary at or below written to end, as slices of
// pages with a reference taken on each (give them back with unrefAll).
// bufs is nil when nothing is pending.
func (sc *segCache) pending() (bufs [][]byte, pages []*tcPage, from, to int64) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.written >= sc.end {
		return nil, nil, 0, 0
	}
	// Pages go only once written, so the run reaches down to the
	// block holding written.
	from, to = sc.written&^(directBlock-1), sc.end
	first := sc.pages[0].pos
	for k := (from - first) / tcPageSize; k < int64(len(sc.pages)); k++ {
		p := sc.pages[k]
		lo := max(from-p.pos, 0)
		hi := min(to-p.pos, tcPageSize)
		bufs = append(bufs, p.buf[lo:hi:hi])
		p.refs.Add(1)
		pages = append(pages, p)
	}
	return bufs, pages, from, to
}

// wrote records that the file holds the run up to to, and makes the
// pages that held pending bytes and now hold none evictable again.
func (sc *segCache) wrote(to int64) {
	sc.mu.Lock()
	if to <= sc.written {
		sc.mu.Unlock()
		return
	}
	old := sc.written
	sc.written = to
	var done []*tcPage
	for i := len(sc.pages) - 1; i >= 0; i-- {
		p := sc.pages[i]
		if p.pos+tcPageSize <= old {
			break // done before
		}
		if min(p.pos+tcPageSize, sc.end) <= to {
			done = append(done, p)
		}
	}
	sc.mu.Unlock()
	if len(done) > 0 {
		sc.tc.requeue(sc, done)
	}
}

// drop uncaches every page of the segment (it is closed, deleted or
// swapped away, or its cache cannot go on). Nothing may be pending.
func (sc *segCache) drop() {
	sc.mu.Lock()
	pages := sc.pages
	sc.pages = nil
	sc.written = sc.end
	sc.mu.Unlock()
	sc.tc.uncache(pages)
}

// ref returns the cached bytes [pos, pos+n) as slices of pages, with a
// reference taken on each page for the caller to give back with unref,
// or nil when they are not all cached.
func (sc *segCache) ref(pos, n int64) ([][]byte, []*tcPage) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(sc.pages) == 0 || pos < sc.pages[0].pos || pos+n > sc.end || n <= 0 {
		return nil, nil
	}
	first := sc.pages[0].pos
	i := (pos - first) / tcPageSize
	j := (pos + n - 1 - first) / tcPageSize
	bufs := make([][]byte, 0, j-i+1)
	pages := make([]*tcPage, 0, j-i+1)
	for k := i; k <= j; k++ {
		p := sc.pages[k]
		from := max(pos-p.pos, 0)
		to := min(pos+n-p.pos, tcPageSize)
		bufs = append(bufs, p.buf[from:to:to])
		p.refs.Add(1)
		pages = append(pages, p)
	}
	return bufs, pages
}

// copyAt copies into b what the cache holds of the segment's bytes at
// pos and returns how many bytes at the front of b it left for the
// caller to read from the file: len(b) when it holds none of them, 0
// when it holds them all. It copies a part only when the file lacks it
// (write-back), so a read is served from one place where it can be.
func (sc *segCache) copyAt(b []byte, pos int64) int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	n := int64(len(b))
	if len(sc.pages) == 0 || pos+n > sc.end {
		return len(b)
	}
	first := sc.pages[0].pos
	from := max(pos, first)
	if from > pos && pos+n <= sc.written {
		return len(b) // the file has it all
	}
	// Below the run the file has every byte: pages go once written.
	skip := from - pos
	for at := from; at < pos+n; {
		p := sc.pages[(at-first)/tcPageSize]
		at += int64(copy(b[at-pos:], p.buf[at-p.pos:]))
	}
	return int(skip)
}

// holds reports whether the cache holds the segment's bytes at pos.
func (sc *segCache) holds(pos int64) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.pages) > 0 && pos >= sc.pages[0].pos && pos < sc.end
}

// fileEnd is how far the file holds the segment's bytes, of size.
func (sc *segCache) fileEnd(size int64) int64 {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.written >= sc.end {
		return size
	}
	return min(size, sc.written)
}

// fileHas reports whether the file holds the segment's bytes below to.
func (sc *segCache) fileHas(to int64) bool { return to <= sc.fileEnd(math.MaxInt64) }
