package log

import (
	"container/list"
	"sync"
	"sync/atomic"
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
// The cache only ever saves a read: every byte in it was written to the
// file before it was published, and a segment's bytes below its
// published size never change while the log is open (truncation happens
// only to a closed log). So a read that misses, or finds a page evicted
// a moment before, reads the same bytes from the file.
//
// Memory comes in pages of tcPageSize, allocated a slab at a time up to
// the budget and reused from then on (outside the Go heap where the
// platform allows, so the collector neither scans nor paces on it). A
// page is reference counted: the cache holds one reference while the
// page is cached, and each region handed out holds one until released,
// so eviction never recycles memory a connection is still sending.

// SetTailCache makes the log keep what it appends directly in tc (shared
// with other logs), or in no cache when tc is nil. It applies to the
// appends that follow.
func (l *Log) SetTailCache(tc *TailCache) { l.tcache.Store(tc) }

// cacheTail caches b, just written at pos in s, when it was written
// directly and the log has a tail cache. Bytes written through the page
// cache are read from there: the cache keeps what it holds below them
// (a reader catching up finds it), and starts again at the next direct
// append.
// REQUIRES: l.appendMu held.
func (l *Log) cacheTail(s *segment, b []byte, pos int64, direct bool) {
	tc := l.tcache.Load()
	sc := s.cache.Load()
	if sc != nil && sc.tc != tc {
		s.dropCache()
		sc = nil
	}
	if tc == nil || !direct {
		return
	}
	if sc == nil {
		sc = &segCache{tc: tc}
		s.cache.Store(sc)
	}
	sc.add(b, pos)
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
	// slabs give the memory back (Close).
	slabs  []func()
	closed bool

	hits, misses atomic.Int64
}

// NewTailCache returns a cache of at most budget bytes (rounded down to
// whole pages). A budget below one page makes a cache that never holds
// anything.
func NewTailCache(budget int64) *TailCache {
	return &TailCache{maxPages: int(max(budget, 0) / tcPageSize)}
}

// TailCacheStats is what a TailCache reports.
type TailCacheStats struct {
	// Allocated is the bytes of memory the cache has taken (it keeps
	// them for reuse); Cached the bytes of the pages holding log data.
	Allocated, Cached int64
	// HitBytes and MissBytes are the bytes reads found in the cache and
	// the bytes they had to read from files instead, for logs it serves.
	HitBytes, MissBytes int64
}

// Stats reports the cache's memory and hit counts.
func (tc *TailCache) Stats() TailCacheStats {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return TailCacheStats{
		Allocated: int64(tc.pages) * tcPageSize,
		Cached:    int64(tc.fifo.Len()) * tcPageSize,
		HitBytes:  tc.hits.Load(),
		MissBytes: tc.misses.Load(),
	}
}

// Close gives the cache's memory back once every page is free: every log
// using the cache closed (so nothing is cached) and every region
// released. Memory a page is still held in, by a bug, stays mapped
// rather than be pulled from under its reader. The cache takes nothing
// after Close.
func (tc *TailCache) Close() {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.closed = true
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
	// refs counts the cache's reference, while cached, and the readers'
	// and appender's.
	refs atomic.Int32
}

// alloc returns a page with one reference (the caller's), evicting the
// oldest cached page when the budget is spent, or nil when every page is
// held by readers.
func (tc *TailCache) alloc() *tcPage {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.closed {
		return nil
	}
	for {
		if n := len(tc.free); n > 0 {
			p := tc.free[n-1]
			tc.free = tc.free[:n-1]
			p.refs.Store(1)
			return p
		}
		if tc.pages < tc.maxPages {
			n := min(tcSlab, tc.maxPages-tc.pages)
			mem, release := allocPages(n * tcPageSize)
			tc.slabs = append(tc.slabs, release)
			for i := range n {
				tc.free = append(tc.free, &tcPage{buf: mem[i*tcPageSize : (i+1)*tcPageSize : (i+1)*tcPageSize]})
			}
			tc.pages += n
			continue
		}
		e := tc.fifo.Front()
		if e == nil {
			return nil
		}
		tc.evictLocked(e.Value.(*tcPage))
	}
}

// evictLocked takes a cached page out of the cache: out of the fifo, off
// the front of its segment's pages, and its reference given up.
// REQUIRES: tc.mu held.
func (tc *TailCache) evictLocked(p *tcPage) {
	tc.fifo.Remove(p.elem)
	p.elem = nil
	sc := p.owner
	sc.mu.Lock()
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

// uncache gives up the cache's references to pages a segment dropped.
func (tc *TailCache) uncache(pages []*tcPage) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for _, p := range pages {
		if p.elem != nil { // not evicted meanwhile
			tc.fifo.Remove(p.elem)
			p.elem = nil
			tc.unrefLocked(p)
		}
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

// segCache is one segment's cached bytes: a run of the file from
// pages[0].pos to end, page i holding the bytes from pages[0].pos +
// i*tcPageSize. Only the log's appender adds pages and moves end; the
// cache's eviction takes pages off the front.
type segCache struct {
	tc *TailCache

	mu    sync.Mutex // guards the following
	pages []*tcPage
	end   int64
}

// add caches b, just written at pos in the segment and not yet
// published. A gap since the last bytes cached (appends written through
// the page cache meanwhile) starts the cache again at pos.
// REQUIRES: Log.appendMu held.
func (sc *segCache) add(b []byte, pos int64) {
	sc.mu.Lock()
	if len(sc.pages) > 0 && sc.end != pos {
		stale := sc.pages
		sc.pages = nil
		sc.mu.Unlock()
		sc.tc.uncache(stale)
	} else {
		sc.mu.Unlock()
	}
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
				sc.drop() // a gap would follow: start again later
				return
			}
			p.pos, p.owner = pos, sc
		}
		// Bytes past end are read by nobody, so they are written
		// without the lock.
		n := copy(p.buf[pos-p.pos:], b)
		sc.mu.Lock()
		switch {
		case fresh:
			sc.pages = append(sc.pages, p)
			sc.end = pos + int64(n)
		case len(sc.pages) > 0 && sc.pages[len(sc.pages)-1] == p:
			sc.end = pos + int64(n)
		default:
			// Evicted while being filled, and every page before it
			// with it: the next bytes start a new run.
		}
		sc.mu.Unlock()
		if fresh {
			sc.tc.enqueue(p)
		} else {
			sc.tc.unref(p)
		}
		pos += int64(n)
		b = b[n:]
	}
}

// drop uncaches every page of the segment (it is closed, deleted or
// swapped away, or its cache cannot go on).
func (sc *segCache) drop() {
	sc.mu.Lock()
	pages := sc.pages
	sc.pages = nil
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

// copyAt copies the cached bytes at pos into b, reporting whether they
// were all cached.
func (sc *segCache) copyAt(b []byte, pos int64) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	n := int64(len(b))
	if len(sc.pages) == 0 || pos < sc.pages[0].pos || pos+n > sc.end {
		return false
	}
	first := sc.pages[0].pos
	for len(b) > 0 {
		p := sc.pages[(pos-first)/tcPageSize]
		c := copy(b, p.buf[pos-p.pos:])
		b = b[c:]
		pos += int64(c)
	}
	return true
}
