package log

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// Direct reads.
//
// A log written with direct writes leaves nothing in the page cache, so a
// reader of what its tail cache no longer holds (a replay from an old
// offset, a follower catching up) reads the segment files from the disk.
// Through the page cache, with sendfile, each such read fills page-cache
// pages that no one has touched since they were last freed, and where the
// host backs a virtual machine's memory lazily, touching them costs far
// more than reading them: about 2 CPU seconds per GB, paid by whoever
// copies them first (the consumer's receive copy on loopback). Those
// pages also push out of the page cache what others cached.
//
// With direct reads (SetDirectReads) such a read goes to the disk with
// O_DIRECT instead, into a buffer from pools every log shares, which
// stay touched because they are reused; the region handed out is that
// buffer's memory, sent with one writev like the tail cache's, and given
// back at Release. The batch headers are read from the same buffer, so
// the file's pages are never read through the page cache. A region whose
// pages are mostly in the page cache already (cachestat) is still sent
// from there with sendfile, and so is one of the tail cache.

// directReadMax bounds one direct read: a region read directly holds at
// most this many bytes beyond its first batch. A fetch may return fewer
// bytes than it asked for; the client fetches the rest next.
const directReadMax = 8 << 20

// errDirectTooLarge stops a direct read whose first batch is larger
// than the largest buffer: it is read as before.
var errDirectTooLarge = errors.New("log: batch too large for a direct read")

// A buffer of the pools holds directReadMin << class bytes and
// directReadSlack more, so that a read of a power of two (a client's
// fetch size per partition: 1 MiB by default) with the few KiB of
// alignment and index step around it takes the buffer of its size, not
// one twice as large.
const (
	directReadMin   = 64 << 10
	directReadSlack = 64 << 10
)

// directAheadMax bounds the memory of read-aheads started and not yet
// claimed, across every log: a reader that stops leaves its log's
// read-ahead held until the log is read again or closed.
const directAheadMax = 64 << 20

// directClasses is how many buffer sizes the pools keep: directReadMin
// doubled up to 2*directReadMax (and the slack).
const directClasses = 9

// DirectReads reads log regions with O_DIRECT for every log given it
// (SetDirectReads), sharing its buffers between them, and counts what it
// read.
type DirectReads struct {
	// pools hold the buffers of each class (directReadMin).
	pools [directClasses]sync.Pool
	reads atomic.Int64
	bytes atomic.Int64
	// aheadBytes is the buffer memory of read-aheads not yet claimed,
	// at most about directAheadMax; aheadUsed counts those claimed.
	aheadBytes atomic.Int64
	aheadUsed  atomic.Int64
	// off is set once the platform or the file system refused: every
	// read goes through the page cache from then on.
	off atomic.Bool
}

// NewDirectReads returns an empty set of buffers.
func NewDirectReads() *DirectReads { return &DirectReads{} }

// DirectReadStats is what a DirectReads has read.
type DirectReadStats struct {
	// Reads counts the regions read directly; Bytes their bytes read
	// from the disk (whole blocks, so a little more than sent).
	Reads, Bytes int64
	// AheadUsed counts the regions that started in a read-ahead.
	AheadUsed int64
}

// Stats returns what dr has read so far.
func (dr *DirectReads) Stats() DirectReadStats {
	return DirectReadStats{Reads: dr.reads.Load(), Bytes: dr.bytes.Load(), AheadUsed: dr.aheadUsed.Load()}
}

// SetDirectReads makes ReadRegion read what neither the log's tail cache
// nor the page cache holds with O_DIRECT into dr's buffers; nil turns it
// off (the default).
func (l *Log) SetDirectReads(dr *DirectReads) { l.directReads.Store(dr) }

// directBuf is a pooled, block-aligned buffer.
type directBuf struct {
	b     []byte
	class int // index of the pool it goes back to
	dr    *DirectReads
}

// classSize is the size of the buffers of class.
func classSize(class int) int64 { return directReadMin<<class + directReadSlack }

// buffer returns a buffer of at least n bytes, n <= classSize(directClasses-1).
func (dr *DirectReads) buffer(n int64) *directBuf {
	class := 0
	for classSize(class) < n {
		class++
	}
	if b, ok := dr.pools[class].Get().(*directBuf); ok {
		return b
	}
	return &directBuf{b: alignedBuffer(int(classSize(class))), class: class, dr: dr}
}

func (b *directBuf) release() { b.dr.pools[b.class].Put(b) }

// directSpan is the bytes of a segment file read so far: buf holds the
// file from at, n bytes of it.
type directSpan struct {
	dr    *DirectReads
	file  directFile
	buf   *directBuf
	at, n int64
}

// ensure makes the span hold the file's bytes below to, reading more
// (and moving to a larger buffer) when needed. A file that ends before to
// is corrupt: the caller asks only for bytes below the segment's size.
func (s *directSpan) ensure(to int64) error {
	if to <= s.at+s.n {
		return nil
	}
	need := alignUp(to - s.at)
	if need > int64(len(s.buf.b)) {
		if need > classSize(directClasses-1) {
			return errDirectTooLarge
		}
		nb := s.dr.buffer(need)
		copy(nb.b, s.buf.b[:s.n])
		s.buf.release()
		s.buf = nb
	}
	// Reread the last partial block: the read starts on a boundary.
	from := s.n &^ (directBlock - 1)
	n, err := s.file.readAt(s.buf.b[from:need], s.at+from)
	s.dr.bytes.Add(int64(n))
	s.n = from + int64(n)
	if err != nil {
		return err
	}
	if to > s.at+s.n {
		return fmt.Errorf("%w: segment file ends at %d, need %d", ErrCorrupt, s.at+s.n, to)
	}
	return nil
}

// headerAt reads the batch header at pos from the span.
func (s *directSpan) headerAt(hb []byte, pos int64) error {
	if err := s.ensure(pos + int64(len(hb))); err != nil {
		return err
	}
	copy(hb, s.buf.b[pos-s.at:])
	return nil
}

func alignUp(n int64) int64 { return (n + directBlock - 1) &^ (directBlock - 1) }

// read is readRegionOnce's visit of one segment of l with direct reads:
// the same batches scan finds, read with O_DIRECT into a buffer of dr's.
// ok is false, with nothing read, when the read is better served as
// before: the tail cache holds its start or not all of it is in the file
// yet, the page cache holds most of it, or the platform has no direct
// reads. A read that leaves more of the segment behind it starts reading
// that (read-ahead), for the reader's next fetch.
func (dr *DirectReads) read(l *Log, v *segView, offset int64, maxBytes int32, maxOffset int64) (r Region, exhausted, ok bool, err error) {
	if dr.off.Load() {
		return Region{}, false, false, nil
	}
	pos, limit, exhausted := v.scanStart(offset, maxOffset)
	if exhausted || pos >= limit {
		return Region{}, exhausted, false, nil
	}
	mb := min(int64(max(maxBytes, 1)), directReadMax)
	// The first read covers the index's step to offset (a few KiB at
	// most) and maxBytes after it; a first batch larger than that reads
	// on.
	end := min(limit, pos+mb+2*directBlock)
	if v.c != nil && (v.c.holds(pos) || !v.c.fileHas(end)) {
		return Region{}, false, false, nil
	}
	at := pos &^ (directBlock - 1)
	file, cached, err := openDirectRead(v.f, at, end-at)
	if err != nil {
		if err == errNoDirect {
			dr.off.Store(true)
			return Region{}, false, false, nil
		}
		return Region{}, false, false, err
	}
	if cached {
		return Region{}, false, false, nil
	}
	// A read from the disk: the log's read-ahead is this read's or
	// nobody's, since a reader elsewhere in the log would find it
	// stale. Reads served from the caches leave it to its reader.
	a := l.ahead.Swap(nil)
	span := &directSpan{dr: dr, file: file}
	defer func() {
		if a != nil {
			a.discard()
		}
		span.file.close()
		if span.buf != nil {
			span.buf.release()
		}
	}()
	if a != nil && a.f == v.f && a.at <= at {
		<-a.done
		if a.err == nil && at < a.at+a.n {
			span.buf, span.at, span.n = a.buf, a.at, a.n
			dr.aheadBytes.Add(-int64(len(a.buf.b)))
			dr.aheadUsed.Add(1)
			a = nil
		}
	}
	if span.buf == nil {
		span.buf, span.at = dr.buffer(alignUp(end-at)), at
	}
	if err := span.ensure(end); err != nil {
		return Region{}, false, true, err
	}
	r, exhausted, err = v.scan(offset, int32(mb), maxOffset, span.headerAt)
	if err == nil && !exhausted && r.Len > 0 {
		if v.c != nil && !v.c.fileHas(r.Pos+r.Len) {
			// A first batch running past end into bytes the file
			// does not hold yet (write-back): the caches serve it.
			return Region{}, false, false, nil
		}
		err = span.ensure(r.Pos + r.Len)
	}
	if errors.Is(err, errDirectTooLarge) {
		return Region{}, false, false, nil
	}
	if err != nil || exhausted || r.Len == 0 {
		return Region{}, exhausted, true, err
	}
	from := r.Pos - span.at
	r.mem = [][]byte{span.buf.b[from : from+r.Len : from+r.Len]}
	r.direct, span.buf = span.buf, nil
	dr.reads.Add(1)
	if v.c != nil {
		v.c.tc.count(false, r.Len)
	}
	if next := r.Pos + r.Len; r.Next < maxOffset && next < v.m.size && (v.c == nil || !v.c.holds(next)) {
		// The next read starts where the index places r.Next, which
		// may be a batch or more before next.
		from, _, _ := v.scanStart(r.Next, v.m.next)
		dr.readAhead(l, v, from, min(v.m.size, next+mb+2*directBlock), span.file)
		span.file = directFile{} // the read-ahead's now
	}
	return r, false, true, nil
}

// ahead is a direct read of a log's segment started before anyone asked
// for it: the bytes after the last region read directly, which a reader
// going on in order asks for next.
type ahead struct {
	dr *DirectReads
	f  *os.File // the segment's file, for the reader to recognise
	at int64    // the file position of buf's first byte
	// buf, n and err are the read's, set before done is closed.
	buf  *directBuf
	n    int64
	err  error
	done chan struct{}
}

// discard waits for the read and gives its buffer back.
func (a *ahead) discard() {
	<-a.done
	a.dr.aheadBytes.Add(-int64(len(a.buf.b)))
	a.buf.release()
}

// readAhead reads the segment's bytes [from, to) with file, which it
// closes, on a goroutine of l's, for l's next direct read; or only closes
// file when the read-aheads already hold their share of memory.
func (dr *DirectReads) readAhead(l *Log, v *segView, from, to int64, file directFile) {
	// Only what the file holds now: bytes the tail cache has not
	// written back yet would be read as whatever the file has there,
	// and a reader claiming the read-ahead after the flush wrote them
	// would take that for them.
	valid := v.fileEnd()
	to = min(to, valid)
	at := from &^ (directBlock - 1)
	if to <= from {
		file.close()
		return
	}
	size := alignUp(to - at)
	if dr.aheadBytes.Load()+size > directAheadMax {
		file.close()
		return
	}
	l.aheadMu.Lock()
	if l.aheadClosed {
		l.aheadMu.Unlock()
		file.close()
		return
	}
	a := &ahead{dr: dr, f: v.f, at: at, buf: dr.buffer(size), done: make(chan struct{})}
	dr.aheadBytes.Add(int64(len(a.buf.b)))
	l.aheadWG.Add(1)
	go func() {
		defer l.aheadWG.Done()
		n, err := file.readAt(a.buf.b[:size], at)
		file.close()
		dr.bytes.Add(int64(n))
		a.n, a.err = min(int64(n), valid-at), err
		close(a.done)
	}()
	old := l.ahead.Swap(a)
	l.aheadMu.Unlock()
	if old != nil {
		old.discard() // another reader's, at the same time
	}
}

// closeAhead stops the log's read-aheads: it waits for those under way
// and gives back the last one's buffer. Part of Close.
func (l *Log) closeAhead() {
	l.aheadMu.Lock()
	l.aheadClosed = true
	l.aheadMu.Unlock()
	l.aheadWG.Wait()
	if a := l.ahead.Swap(nil); a != nil {
		a.discard()
	}
}
