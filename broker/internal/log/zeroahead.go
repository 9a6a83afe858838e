package log

import (
	"fmt"
	"os"
	"sync"
)

// Zero-ahead.
//
// A synchronized write that extends a file does more than write: the file
// system allocates blocks and records the new size, and makes both
// durable with the data, so the write waits for a journal commit, and an
// io_uring hands it to a kernel worker thread rather than issuing it
// itself. A write over blocks the file already has, written and durable,
// changes no metadata: it is one device write and a cache flush.
//
// So the active segment of a log whose group commits go through a commit
// ring (ring_linux.go) and are small is kept ahead of its appends: once
// the bytes written come within zeroStep/2 of the bytes known written, a
// goroutine writes zeroStep more bytes of zeros past them and syncs the
// file, off the path of the acknowledgements. It starts only once the
// segment holds zeroStep bytes of records, so the zeros on disk never
// exceed one and a half times the records of the segment that has them,
// and a broker with thousands of partitions written now and then (or
// the internal topics' offset commits) writes no megabytes of zeros for
// each. Commits that end below that mark go to the ring; a commit that
// outruns it (a burst, the segment's first commits) is written as
// before. The zeros are direct-write padding (direct.go): readers never
// look past the segment's size, sealing cuts them off, and recovery
// takes zeros after the last batch for padding. They cost the disk a
// second write of every byte appended, in large writes, where each
// commit saves a metadata update.

// smallCommit is the largest commit that asks for zeros ahead. The
// saving is per commit and the zeros' cost per byte: a partition whose
// commits are large (one producer at full speed) would pay a second
// write of its bytes, and wait for zeroings its appends catch up with,
// to save little. Its commits extend the file, as without zero-ahead.
const smallCommit = 256 << 10

// zeroStep is the bytes one zeroing writes.
const zeroStep = 4 << 20

// zeroes is what zeroing writes from: a block-aligned run of zeros,
// never written.
var zeroes = alignedBuffer(1 << 20)

// zeroAhead is a segment's zero-ahead state. REQUIRES: segment.wmu held.
type zeroAhead struct {
	// ready is how far the file is written, with data or zeros, and
	// synced: a write that ends below it overwrites.
	ready int64
	// hi is the end of the data written, rounded up to a block.
	hi int64
	// from and to are the zeroing under way, from == to when none; a
	// write into it waits for it (done, whose lock is segment.wmu).
	from, to int64
	done     sync.Cond
	// stopped is set when the segment is sealed or a zeroing failed.
	stopped bool
}

// zeroing reports whether a zeroing under way covers a write ending at
// to. REQUIRES: s.wmu held.
func (s *segment) zeroing(to int64) bool {
	return s.zero.from < s.zero.to && to > s.zero.from
}

// awaitZeroing waits until no zeroing under way covers a write ending at
// to. The wait lets go of s.wmu: the caller must look again at what the
// lock guards. REQUIRES: s.wmu held.
func (s *segment) awaitZeroing(to int64) {
	for s.zeroing(to) {
		s.zero.done.Wait()
	}
}

// wroteData notes a write of the file's bytes below to.
// REQUIRES: s.wmu held.
func (s *segment) wroteData(to int64) {
	s.zero.hi = max(s.zero.hi, (to+directBlock-1)&^(directBlock-1))
}

// overwrites reports whether a write ending at to goes over blocks the
// file has, written and synced. REQUIRES: s.wmu held.
func (s *segment) overwrites(to int64) bool { return to <= s.zero.ready }

// zeroMore starts a zeroing past the data written when the zeros ahead
// of it run low and none is under way. f is the segment's O_DIRECT file.
// REQUIRES: s.wmu held.
func (s *segment) zeroMore(f *os.File) {
	z := &s.zero
	if z.stopped || z.from < z.to || z.hi < zeroStep || z.ready-z.hi >= zeroStep/2 {
		return
	}
	if z.done.L == nil {
		z.done.L = &s.wmu
	}
	z.from = max(z.ready, z.hi)
	z.to = z.from + zeroStep
	s.dio.padded = true
	go s.zeroRange(f, z.from, z.to)
}

// zeroRange writes zeros to [from, to) of f and syncs the file, then
// marks the range ready. A failure stops zero-ahead for the segment:
// commits then write as they would without it.
func (s *segment) zeroRange(f *os.File, from, to int64) {
	iov := make([][]byte, 0, (to-from)/int64(len(zeroes))+1)
	for at := from; at < to; at += int64(len(zeroes)) {
		iov = append(iov, zeroes[:min(int64(len(zeroes)), to-at)])
	}
	err := pwritev(f, iov, from)
	if err == nil {
		err = syncData(s.f)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	z := &s.zero
	if err == nil {
		z.ready = to
	} else {
		z.stopped = true
	}
	z.from, z.to = 0, 0
	z.done.Broadcast()
}

// stopZeroing waits for the zeroing under way, if any, and starts no
// more: the segment is being sealed or closed. REQUIRES: s.wmu held.
func (s *segment) stopZeroing() {
	s.awaitZeroing(s.zero.to)
	s.zero.stopped = true
}

// allZeros reports whether the bytes of f in [from, to) are all zero.
func allZeros(f *os.File, from, to int64) (bool, error) {
	b := make([]byte, min(to-from, 1<<20))
	for from < to {
		n := min(int64(len(b)), to-from)
		if _, err := f.ReadAt(b[:n], from); err != nil {
			return false, fmt.Errorf("log: read padding: %w", err)
		}
		for _, c := range b[:n] {
			if c != 0 {
				return false, nil
			}
		}
		from += n
	}
	return true, nil
}
