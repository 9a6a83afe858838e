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
// Logs whose acknowledgements wait for a flush (flush.messages 1, the
// default) have their pending bytes written by the flush: a partition
// flushes right after each append, so the file is at most one group
// commit behind. With larger flush.messages, acknowledged bytes must be
// in the file (the kernel's hands) before the acknowledgement, as they
// are with Kafka, to survive the broker process dying: the owner waits
// for that with WaitWritten, which writes what is pending the same way
// without RWF_DSYNC, so that appends arriving meanwhile share the next
// write. What nobody waits for is written by the flush, at writeBackMax,
// or at Close.
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
//
// The flush's write is also its fsync when it can be (flushPending):
// when every byte of the file below the run is durable, a write of the
// run with RWF_DSYNC leaves the whole segment durable when it returns
// (on kernels that get that right for the size it extends: dsyncTrusted).
// One system call instead of a write and an fdatasync matters beyond the
// call itself: each blocking call holds a thread in the kernel, and the
// Go runtime hands that thread's processor to another thread it wakes,
// then parks the first when it returns; a 1 KiB produce at full speed
// spent 14-24% less CPU per GB with one call per commit
// (bench/README.md, "One system call per group commit").

// writeBackMax bounds the bytes a log leaves pending: past it the
// appender writes them itself. It bounds the pages a log can hold out of
// eviction when its flushes lag (or fail to come). Above a produce's
// largest batch (1 MB by default) and what comes during a flush, so that
// the appender does not write each batch itself and leave the flush
// bytes it did not write to fdatasync.
const writeBackMax = 4 << 20

// appendBack caches b, which goes at pos in s, for the flush to write,
// and reports false when it could not (no page to be had): the caller
// then writes it. REQUIRES: l.appendMu held.
func (l *Log) appendBack(s *segment, sc *segCache, prefix, b []byte, pos int64) (bool, error) {
	if !sc.add(prefix, b, pos) {
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
	_, err := s.writeRun(nil, false)
	return err
}

// writeBack is writePending for WaitWritten: the run goes through the
// tail cache's commit ring where it can, with the group commits of other
// logs. REQUIRES: Log.writeMu held.
func (s *segment) writeBack() error {
	if sc := s.cache.Load(); sc == nil || !sc.hasPending() {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.writeRun(nil, true)
	return err
}

// flushPending is writePending for the flush, which is about to make the
// segment's first size bytes durable. When every byte below the pending
// run is durable already (synced) and the run reaches size, it writes
// the run with RWF_DSYNC: one system call that leaves those size bytes
// durable, where a write and an fdatasync would take two, each holding
// a thread in the kernel while the disk works. It reports whether it
// did; if not, the flush syncs as before.
// REQUIRES: Log.flushMu held.
func (s *segment) flushPending(size int64) (bool, error) {
	if sc := s.cache.Load(); sc == nil || !sc.hasPending() {
		return false, nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeRun(func(from, to int64) bool { return s.synced >= from && to >= size }, false)
}

// writeRun writes the pending run [from, to) to the file, with RWF_DSYNC
// when dsync (if not nil) says so, and reports whether that write made
// it durable. With viaRing an unsynchronized write goes through the
// commit ring too. REQUIRES: s.wmu held.
func (s *segment) writeRun(dsync func(from, to int64) bool, viaRing bool) (bool, error) {
	sc := s.cache.Load()
	if sc == nil {
		return false, nil
	}
	bufs, pages, from, to := sc.pending()
	if bufs == nil {
		return false, nil
	}
	if s.zeroing((to + directBlock - 1) &^ (directBlock - 1)) {
		// Wait for zero-ahead to leave the run's blocks, then look
		// again: the wait lets go of wmu, and another writer may have
		// written the run meanwhile.
		sc.tc.unrefAll(pages)
		s.awaitZeroing(to + directBlock)
		return s.writeRun(dsync, viaRing)
	}
	defer sc.tc.unrefAll(pages)
	// The file's last block changes: a direct write through the
	// appender's buffer reads it again.
	s.dio.tailOK = false
	durable, err := s.writeBlocks(bufs, from, to, dsync != nil && dsync(from, to), viaRing)
	if err != nil {
		return false, fmt.Errorf("log: write back appended bytes: %w", err)
	}
	sc.wrote(to)
	return durable, nil
}

// writeBlocks writes bufs, the bytes [from, to) of the file with from at
// a block boundary and no zeroing under way in them, in one O_DIRECT
// write: whole blocks from the pages themselves, the last partial block
// through a buffer padded with zeros. A synchronized write, or any with
// viaRing, goes through the tail cache's commit ring when it overwrites
// (zeroahead.go). With dsync the write is synchronized (RWF_DSYNC) where
// the kernel allows it, and it reports whether it was. Where the file
// system refuses O_DIRECT it writes them through the page cache.
// REQUIRES: s.wmu held.
func (s *segment) writeBlocks(bufs [][]byte, from, to int64, dsync, viaRing bool) (bool, error) {
	if err := s.openDirect(); err != nil {
		return false, s.writeBuffered(bufs, from, err)
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
	end := (to + directBlock - 1) &^ (directBlock - 1)
	var ring *commitRing
	if sc := s.cache.Load(); sc != nil {
		ring = sc.tc.ring
	}
	byRing := (dsync || viaRing) && ring.usable()
	written := false
	var err error
	if byRing && s.overwrites(end) {
		written, err = ring.write(s.dio.f, iov, from, dsync)
	}
	durable := written && dsync
	if err == nil && !written && dsync {
		durable, err = pwritevDSync(s.dio.f, iov, from)
		written = durable
	}
	if err == nil && !written {
		err = pwritev(s.dio.f, iov, from)
	}
	if err != nil {
		if isDirectRefusal(err) {
			s.dio.refuse()
			return false, s.writeBuffered(bufs, from, err)
		}
		return false, err
	}
	s.wroteData(end)
	if byRing && to-from <= smallCommit {
		s.zeroMore(s.dio.f)
	}
	return durable, nil
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
