package log

import "fmt"

// Write-back.
//
// With direct writes and a tail cache, an append need not write at all:
// its bytes go into the cache's pages, which readers read them from, and
// the flush that makes them durable writes them to the file first, with
// one O_DIRECT write per segment for everything appended since the last
// flush, straight from the pages. So an appender copies once, into
// memory, and the disk write moves off its path into the group commit,
// where the appends that arrive during a flush share the next one.
//
// This is for logs whose acknowledgements wait for a flush
// (flush.messages 1, the default): a partition flushes right after each
// append, so the file is at most one group commit behind. With larger
// flush.messages, acknowledged bytes must be in the file (the page
// cache) when the append returns, as they are with Kafka, to survive the
// broker process dying; such logs write as they append.
//
// The bytes the file lacks are pending: [segCache.written, end) of the
// run. A page holding pending bytes is never evicted, so a reader finds
// them in the cache; below the run the file has every byte (the cache
// copies a read that spans both from both, and a region that does is
// copied, since it cannot be half file and half memory). Whatever writes
// to the file other than the flush (a write through the page cache, a
// follower's append, sealing, changing the cache) writes what is pending
// first, under segment.wmu. The file beyond the pending bytes is never
// read: recovery after a crash cuts a log at its last whole batch, as
// after any torn write.
//
// A run starts at a block boundary, with the file's bytes from there to
// the append (runStart), so that page memory maps onto whole blocks of
// the file and the flush writes from it without a copy, except the last
// partial block, which goes through a zero-padded buffer.

// writeBackMax bounds the bytes a log leaves pending: past it the
// appender writes them itself. It bounds the pages a log can hold out of
// eviction when its flushes lag (or fail to come).
const writeBackMax = 512 << 10

// appendBack caches b, which goes at pos in s, for the flush to write,
// and reports false when it could not (no page to be had): the caller
// then writes it. REQUIRES: l.appendMu held.
func (l *Log) appendBack(s *segment, sc *segCache, prefix, b []byte, pos int64) (bool, error) {
	if !sc.add(prefix, b, pos, false) {
		return false, nil
	}
	if sc.pendingBytes() >= writeBackMax {
		if err := s.writePending(); err != nil {
			return true, err
		}
	}
	return true, nil
}

// runStart returns the file's bytes from the block boundary at or below
// pos up to pos, for a new run of the cache to start with, after writing
// what is pending. REQUIRES: Log.appendMu held.
func (s *segment) runStart(pos int64) ([]byte, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writePendingLocked(); err != nil {
		return nil, err
	}
	start := pos &^ (directBlock - 1)
	if start == pos {
		return nil, nil
	}
	if !s.dio.tailOK {
		if err := s.loadTail(start, pos); err != nil {
			return nil, err
		}
	}
	return append([]byte(nil), s.dio.tail...), nil
}

// writePending writes to the file what the segment's tail cache holds
// for it. The flush calls it before it syncs.
func (s *segment) writePending() error {
	if sc := s.cache.Load(); sc == nil || !sc.hasPending() {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writePendingLocked()
}

// REQUIRES: s.wmu held.
func (s *segment) writePendingLocked() error {
	sc := s.cache.Load()
	if sc == nil {
		return nil
	}
	bufs, pages, from, to := sc.pending()
	if bufs == nil {
		return nil
	}
	defer sc.tc.unrefAll(pages)
	// The file's last block changes: a direct write through the
	// appender's buffer reads it again.
	s.dio.tailOK = false
	if err := s.writeBlocks(bufs, from, to); err != nil {
		return fmt.Errorf("log: write back appended bytes: %w", err)
	}
	sc.wrote(to)
	return nil
}

// writeBlocks writes bufs, the bytes [from, to) of the file with from at
// a block boundary, in one O_DIRECT write: whole blocks from the pages
// themselves, the last partial block through a buffer padded with zeros.
// Where the file system refuses O_DIRECT it writes them through the page
// cache. REQUIRES: s.wmu held.
func (s *segment) writeBlocks(bufs [][]byte, from, to int64) error {
	if err := s.openDirect(); err != nil {
		return s.writeBuffered(bufs, from, err)
	}
	full := to &^ (directBlock - 1)
	iov := bufs
	if full < to {
		tail := to - full
		// The partial block is the end of the last buffer (a page
		// boundary is a block boundary).
		last := bufs[len(bufs)-1]
		bp := directBuffers.Get().(*[]byte)
		defer directBuffers.Put(bp)
		pad := (*bp)[:directBlock]
		n := copy(pad, last[int64(len(last))-tail:])
		clear(pad[n:])
		iov = make([][]byte, 0, len(bufs)+1)
		iov = append(iov, bufs[:len(bufs)-1]...)
		if keep := last[:int64(len(last))-tail]; len(keep) > 0 {
			iov = append(iov, keep)
		}
		iov = append(iov, pad)
		s.dio.padded = true
	}
	if err := pwritev(s.dio.f, iov, from); err != nil {
		if isDirectRefusal(err) {
			s.dio.refuse()
			return s.writeBuffered(bufs, from, err)
		}
		return err
	}
	return nil
}

// writeBuffered writes bufs at from through the page cache, after a
// direct write could not be made (why); anything but a refusal of
// O_DIRECT is the caller's error.
func (s *segment) writeBuffered(bufs [][]byte, from int64, why error) error {
	if !s.dio.failed {
		return why
	}
	for _, b := range bufs {
		if _, err := s.f.WriteAt(b, from); err != nil {
			return err
		}
		from += int64(len(b))
	}
	return nil
}
