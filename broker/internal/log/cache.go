package log

import "os"

// Page cache drop-behind.
//
// Every appended byte goes through the page cache, and fetches are served
// from there. Left alone, the kernel keeps each page written until memory
// runs short, so the cache grows by every byte appended and every append
// writes into a page the kernel has to find first. Finding a free page
// costs more than reusing one just given back — on a virtual machine whose
// host backs guest memory lazily, several times the copy itself
// (bench/README.md, "Page cache drop-behind") — while the pages of records
// every reader has fetched are rarely read again.
//
// So the log's owner says, with DropCachedBelow, below which offset every
// active reader has fetched, and once a flush has made those records
// durable — the kernel drops only clean pages — the flush loop advises
// the kernel (POSIX_FADV_DONTNEED) to drop their pages. The next appends
// reuse them. A reader that comes back for those records reads them from
// disk, as it would once the kernel had evicted them.

// dropStep is the least a segment's dropped prefix grows by per call, so
// a log fetched and flushed thousands of times a second makes few calls.
const dropStep = 1 << 20

var pageSize = int64(os.Getpagesize())

// DropCachedBelow says every reader has fetched the records below off: a
// flush may drop their pages from the page cache. It only ever raises the
// mark, and costs an atomic load when the mark does not move.
func (l *Log) DropCachedBelow(off int64) { raise(&l.readAll, off) }

// CacheDropped is the bytes the log has asked the kernel to drop from the
// page cache.
func (l *Log) CacheDropped() int64 { return l.cacheDropped.Load() }

// dropCache drops the durable pages below the readers' mark, for each
// segment whose undropped part below the mark has reached dropStep (or
// that lies wholly below the mark and is no longer appended to). Only the
// flush loop calls it: it owns segment.dropped.
func (l *Log) dropCache() {
	defer l.dropPasses.Add(1)
	mark := min(l.readAll.Load(), l.flushed.Load())
	if mark <= l.dropMark.Load() {
		return
	}
	l.dropMark.Store(mark)
	type span struct {
		s        *segment
		from, to int64
	}
	var buf [2]span
	todo := buf[:0]
	l.mu.RLock()
	// From the segment holding the mark back to the first one already
	// dropped up to its end.
	last := len(l.segments) - 1
	for i := l.segmentForLocked(mark - 1); i >= 0; i-- {
		s := l.segments[i]
		var to int64
		whole := s.pub.next <= mark
		if whole {
			to = s.pub.size
		} else {
			// Down to a page: the kernel keeps a page it is asked to
			// drop part of, and the next drop starts above it.
			to = floorPos(s.pub.index, uint32(mark-s.base)) &^ (pageSize - 1)
		}
		if to > s.dropped && (to-s.dropped >= dropStep || whole && i < last) {
			todo = append(todo, span{s, s.dropped, to})
		}
		if whole && s.dropped >= s.pub.size && i < last {
			break
		}
	}
	l.mu.RUnlock()
	for _, d := range todo {
		// Advice only: a file retention closed meanwhile refuses it,
		// and nothing is lost either way.
		if dropPages(d.s.f, d.from, d.to-d.from) == nil {
			l.cacheDropped.Add(d.to - d.from)
		}
		d.s.dropped = d.to
	}
}
