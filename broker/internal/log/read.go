package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// ReadResult is what Read returns.
type ReadResult struct {
	// Records holds whole batches as stored, or nothing when no batch is
	// available below maxOffset. It is the caller's to keep.
	Records []byte
	// LogStartOffset is the log start offset when the read was made.
	LogStartOffset int64
}

// readRetries bounds how often a read restarts because retention deleted
// the segment it was reading.
const readRetries = 8

// Read returns whole batches starting with the one that contains offset
// (so the first may start below it), ending before the first batch that
// reaches maxOffset (the high watermark, always at a batch boundary), and
// adding batches while the total stays within maxBytes — except that the
// first batch is always returned however large (KIP-74). Batches come from
// one segment. An offset below the log start or above the log end fails
// with ErrOffsetOutOfRange.
func (l *Log) Read(offset int64, maxBytes int32, maxOffset int64) (ReadResult, error) {
	for attempt := 0; ; attempt++ {
		if l.closed.Load() {
			return ReadResult{}, ErrClosed
		}
		res, err := l.readOnce(offset, maxBytes, maxOffset, l.directReads.Load())
		if err != nil && errors.Is(err, os.ErrClosed) {
			// The segment was deleted (or the log closed) under us; look
			// again.
			if attempt < readRetries {
				continue
			}
			return ReadResult{}, fmt.Errorf("%w: read raced segment deletion", ErrClosed)
		}
		return res, err
	}
}

// segView is a reader's snapshot of a segment, taken under Log.mu.
type segView struct {
	f    *os.File
	base int64
	m    segMeta
	// c is the segment's tail cache, if it has one (tailcache.go).
	c *segCache
	// limit bounds the decompressed records of a batch looked into
	// (readLimit).
	limit int64
}

// fileEnd is how far the segment's file holds its bytes now: its size in
// v, or less while its tail cache holds bytes not yet written back.
func (v *segView) fileEnd() int64 {
	if v.c == nil {
		return v.m.size
	}
	return v.c.fileEnd(v.m.size)
}

// segmentFor returns the index of the segment that holds offset (the last
// with base <= offset), or 0. REQUIRES: l.mu held.
func (l *Log) segmentForLocked(offset int64) int {
	i := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base > offset })
	return max(i-1, 0)
}

// readOnce reads as Read does. With dr, what neither the tail cache nor
// the page cache holds is read as ReadRegion reads it, with O_DIRECT
// (direct_read.go), and copied out: a copying reader (a fetch below
// version 4, one past the descriptors the broker may pin, a coordinator
// loading its partition) does not fill page-cache pages either.
func (l *Log) readOnce(offset int64, maxBytes int32, maxOffset int64, dr *DirectReads) (ReadResult, error) {
	var res ReadResult
	start, err := l.walkSegments(offset, maxOffset, func(v *segView, offset, maxOffset int64) (bool, error) {
		if dr != nil {
			r, exhausted, ok, err := dr.read(l, v, offset, maxBytes, maxOffset)
			if ok || err != nil {
				if r.Len > 0 {
					var berr error
					res.Records, berr = r.Bytes()
					r.Release()
					err = errors.Join(err, berr)
				}
				return exhausted, err
			}
		}
		recs, exhausted, err := v.read(offset, maxBytes, maxOffset)
		if err != nil || !exhausted {
			res.Records = recs
		}
		return exhausted, err
	})
	if start < 0 {
		return ReadResult{}, err
	}
	res.LogStartOffset = start
	return res, err
}

// walkSegments calls visit with the segment that holds offset (or, for an
// offset in a gap, the first one after it), then with each later segment
// while visit reports the one it had exhausted (nothing at or after the
// offset in it: a gap at its end), until visit has read something, fails,
// or maxOffset (cut to the log end) is reached. The segment is visited
// without l.mu held. It returns the log start offset, or -1 with
// ErrOffsetOutOfRange when offset is outside the log.
func (l *Log) walkSegments(offset, maxOffset int64, visit func(v *segView, offset, maxOffset int64) (exhausted bool, err error)) (int64, error) {
	prevBase := int64(-1)
	for {
		l.mu.RLock()
		start, end := l.start.Load(), l.end.Load()
		if offset < start || offset > end {
			l.mu.RUnlock()
			return -1, fmt.Errorf("%w: offset %d, log holds [%d, %d)", ErrOffsetOutOfRange, offset, start, end)
		}
		maxOffset = min(maxOffset, end)
		if offset >= maxOffset {
			l.mu.RUnlock()
			return start, nil
		}
		var i int
		if prevBase < 0 {
			i = l.segmentForLocked(offset)
		} else {
			i = sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base > prevBase })
		}
		if i >= len(l.segments) {
			l.mu.RUnlock()
			return start, nil
		}
		s := l.segments[i]
		v := segView{f: s.f, base: s.base, m: s.pub, c: s.cache.Load()}
		l.mu.RUnlock()

		// An offset in a gap before this segment reads from its start.
		offset = max(offset, v.base)
		if offset >= maxOffset {
			return start, nil
		}
		exhausted, err := visit(&v, offset, maxOffset)
		if err != nil || !exhausted {
			return start, err
		}
		prevBase = v.base
	}
}

// read returns the batches for Read from one segment; exhausted reports
// that the segment holds no batch at or after offset.
func (v *segView) read(offset int64, maxBytes int32, maxOffset int64) (recs []byte, exhausted bool, err error) {
	size := v.m.size
	if size == 0 || offset >= v.m.next {
		return nil, true, nil
	}
	rel := uint32(min(offset-v.base, math.MaxUint32))
	pos0 := floorPos(v.m.index, rel)
	limit := size
	if maxOffset < v.m.next {
		if p, ok := ceilPos(v.m.index, uint32(min(maxOffset-v.base, math.MaxUint32))); ok {
			limit = p
		}
	}
	if pos0 >= limit {
		return nil, false, nil
	}
	// The batch holding offset starts before the next index entry; read
	// from the floor entry through maxBytes past that point, so one pread
	// usually covers the whole answer.
	scanEnd := limit
	if p, ok := nextPos(v.m.index, rel); ok && p < limit {
		scanEnd = p
	}
	mb := max(int64(maxBytes), 1)
	c := chunk{r: v, pos: pos0, limit: limit}
	if err := c.ensure(min(limit-pos0, scanEnd-pos0+mb)); err != nil {
		return nil, false, err
	}

	var i int64
	first := int64(-1)
	for pos0+i < limit {
		if first >= 0 && i-first+batchHeaderSize > mb {
			break
		}
		if err := c.ensure(i + batchHeaderSize); err != nil {
			return nil, false, err
		}
		h, err := parseHeader(c.buf[i:])
		if err != nil {
			return nil, false, fmt.Errorf("segment %d position %d: %w", v.base, pos0+i, err)
		}
		if pos0+i+h.size > limit {
			return nil, false, fmt.Errorf("%w: segment %d position %d: batch of %d bytes runs past %d", ErrCorrupt, v.base, pos0+i, h.size, limit)
		}
		if first < 0 {
			if h.lastOffset() < offset {
				i += h.size
				continue
			}
			if h.lastOffset() >= maxOffset {
				break
			}
			first = i
		} else if h.lastOffset() >= maxOffset || i+h.size-first > mb {
			break
		}
		if err := c.ensure(i + h.size); err != nil {
			return nil, false, err
		}
		i += h.size
	}
	if first < 0 {
		return nil, limit == size && pos0+i >= size, nil
	}
	return c.buf[first:i:i], false, nil
}

// ReadAt reads the segment's bytes at pos into b: from its tail cache
// when they are all there, else from the file. It counts them as the
// cache's hits or misses.
func (v *segView) ReadAt(b []byte, pos int64) (int, error) { return v.readAt(b, pos, true) }

func (v *segView) readAt(b []byte, pos int64, count bool) (int, error) {
	n := len(b)
	if v.c != nil {
		n = v.c.copyAt(b, pos)
		if count {
			v.c.tc.count(true, int64(len(b)-n))
			v.c.tc.count(false, int64(n))
		}
		if n == 0 {
			return len(b), nil
		}
	}
	if _, err := v.f.ReadAt(b[:n], pos); err != nil {
		return 0, err
	}
	return len(b), nil
}

// chunk is a run of segment bytes from pos, read on demand.
type chunk struct {
	r     io.ReaderAt
	pos   int64
	limit int64
	buf   []byte
}

// ensure makes buf hold at least n bytes (n <= limit-pos).
func (c *chunk) ensure(n int64) error {
	if n <= int64(len(c.buf)) {
		return nil
	}
	if c.pos+n > c.limit {
		return fmt.Errorf("%w: segment data ends at %d, need %d", ErrCorrupt, c.limit, c.pos+n)
	}
	have := int64(len(c.buf))
	grow := n
	if have > 0 {
		// Growing past the first read: read ahead so a scan does not
		// pread batch by batch.
		grow = max(n, have+scanWindow)
	}
	grow = min(grow, c.limit-c.pos)
	buf := make([]byte, grow)
	copy(buf, c.buf)
	if _, err := c.r.ReadAt(buf[have:], c.pos+have); err != nil {
		if err == io.EOF {
			return fmt.Errorf("%w: segment shorter than expected", ErrCorrupt)
		}
		return err
	}
	c.buf = buf
	return nil
}
