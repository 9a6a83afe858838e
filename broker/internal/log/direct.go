package log

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Direct writes.
//
// An append normally goes through the page cache: pwrite copies the
// batches into page-cache pages and the flush's fdatasync writes them
// back. When nobody reads a log's tail (no consumer or follower fetches
// it), those pages serve no reader, and on some machines (virtual ones
// whose host backs guest memory lazily) getting and writing back new
// pages is most of what an append costs. The owner of such a log can set
// SetDirectWrites: appends then go to the disk with O_DIRECT, from a
// block-aligned buffer, and leave the page cache alone. A reader that
// comes later reads from the disk, as it would pages long evicted, unless
// the log has a tail cache (tailcache.go) that still holds them. With a
// tail cache the appends themselves only copy into it, and the flush
// writes them (writeback.go).
//
// O_DIRECT writes whole blocks at block-aligned file positions. The
// segment keeps in memory the bytes of its last, partly filled block
// (tail); a direct append writes that block again, followed by the new
// batches, and zeros up to the next block boundary. So the file of an
// active segment written this way may run up to directBlock-1 zero bytes
// past the segment's size (padded): readers never look past the size,
// sealing a segment cuts the padding, and recovery takes zeros after the
// last batch for padding (scanSegment).
//
// The two kinds of write may follow each other on one segment. Linux
// keeps them coherent: a direct write first writes back and then drops
// the cached pages of its range, and a buffered write into a block last
// written directly reads the block in first. The bytes a direct write
// rewrites below the old size are the ones already there, so a reader
// reading them at the same time sees the same bytes either way.

// directBlock is the alignment of direct writes: file position, length
// and memory. 4 KiB covers every logical block size in common use.
const directBlock = 4096

// directChunk is the size of the aligned buffers direct writes copy
// through: a larger append is written in several writes.
const directChunk = 1 << 20

// directBuffers holds the aligned buffers of directChunk bytes shared by
// every log's direct writes (only the appender holding a log's appendMu
// uses one, for the length of a write).
var directBuffers = sync.Pool{New: func() any {
	b := alignedBuffer(directChunk)
	return &b
}}

// alignedBuffer returns n bytes whose first byte is directBlock-aligned.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+directBlock)
	skip := (directBlock - int(uintptr(unsafe.Pointer(&b[0]))&(directBlock-1))) & (directBlock - 1)
	return b[skip : skip+n : skip+n]
}

// directState is an active segment's direct writing: its O_DIRECT
// descriptor, opened at the first direct write, and its last partial
// block.
type directState struct {
	f *os.File
	// tail holds the file's bytes from the last block boundary at or
	// below the segment's size up to the size, when tailOK.
	tail   []byte
	tailOK bool
	// padded says the file may run past the segment's size (zeros).
	padded bool
	// failed says the file system refused O_DIRECT: write through the
	// page cache.
	failed bool
	// open is set while f is open and not failed, for the appender to
	// check without the lock.
	open atomic.Bool
}

// refuse records that the file system refused O_DIRECT.
func (d *directState) refuse() {
	d.failed = true
	d.open.Store(false)
}

// directWritesAtOpen is the direct-writes setting of a newly opened log:
// off, except when the package's tests run every log with direct writes.
var directWritesAtOpen = false

// openDirectFile opens a segment for direct writes: openDirect, except
// in tests of a file system that refuses them.
var openDirectFile = openDirect

// directReadsAtOpen is the direct reads of a newly opened log: none,
// except when the package's tests run every log with them.
var directReadsAtOpen *DirectReads

// tailCacheAtOpen is the tail cache of a newly opened log: none, except
// when the package's tests run every log with one.
var tailCacheAtOpen *TailCache

// SetDirectWrites makes the appends that follow bypass the page cache
// (on) or go through it (off, the default); see the package's direct
// writes. It may be called at any time, from any goroutine; an append
// under way uses the setting it started with. A file system without
// O_DIRECT (tmpfs before Linux 6.6) keeps buffered writes.
func (l *Log) SetDirectWrites(on bool) { l.direct.Store(on) }

// writeAt writes b at pos, the segment's size, directly when direct is
// set and the file system allows it, else through the page cache. What
// the tail cache holds for the file (write-back) is written first.
// REQUIRES: Log.appendMu held.
func (s *segment) writeAt(b []byte, pos int64, direct bool) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writePendingLocked(); err != nil {
		return err
	}
	return s.writeAtLocked(b, pos, direct)
}

// REQUIRES: s.wmu held, nothing pending.
func (s *segment) writeAtLocked(b []byte, pos int64, direct bool) error {
	end := pos + int64(len(b))
	// Before anything else: the wait lets go of wmu. A direct write pads
	// its last block.
	s.awaitZeroing(end + directBlock)
	defer s.wroteData(end)
	if !direct || s.dio.failed {
		if _, err := s.f.WriteAt(b, pos); err != nil {
			return err
		}
		s.dio.tailOK = false
		return nil
	}
	if err := s.openDirect(); err != nil {
		if errors.Is(err, errNoDirect) {
			return s.writeAtLocked(b, pos, false)
		}
		return err
	}
	start := pos &^ (directBlock - 1)
	if !s.dio.tailOK {
		if err := s.loadTail(start, pos); err != nil {
			return err
		}
	}
	orig := b
	bp := directBuffers.Get().(*[]byte)
	defer directBuffers.Put(bp)
	buf := *bp
	// buf holds the bytes of the file from at on; it starts with the
	// partial block already on disk. A full buffer is whole blocks.
	n := copy(buf, s.dio.tail)
	at := start
	for {
		c := copy(buf[n:], b)
		b = b[c:]
		n += c
		if len(b) == 0 {
			break
		}
		if err := s.writeDirect(buf[:n], at); err != nil {
			return s.directFailed(err, orig, pos)
		}
		at += int64(n)
		n = 0
	}
	w := (n + directBlock - 1) &^ (directBlock - 1)
	clear(buf[n:w])
	if err := s.writeDirect(buf[:w], at); err != nil {
		return s.directFailed(err, orig, pos)
	}
	s.dio.tail = append(s.dio.tail[:0], buf[n&^(directBlock-1):n]...)
	s.dio.tailOK = true
	s.dio.padded = s.dio.padded || w > n
	return nil
}

// openDirect opens the segment's O_DIRECT descriptor if it is not open.
// It fails with errNoDirect, and marks the segment for buffered writes,
// when the file system refuses O_DIRECT.
// REQUIRES: s.wmu held.
func (s *segment) openDirect() error {
	if s.dio.failed {
		return errNoDirect
	}
	if s.dio.f != nil {
		return nil
	}
	f, err := openDirectFile(s.path(logSuffix))
	if err != nil {
		if errors.Is(err, errNoDirect) {
			s.dio.refuse()
			return err
		}
		return fmt.Errorf("log: open segment for direct writes: %w", err)
	}
	s.dio.f = f
	s.dio.open.Store(true)
	return nil
}

// writeDirect writes whole blocks at a block boundary through the
// O_DIRECT descriptor. After a failure the partial block is not trusted.
func (s *segment) writeDirect(b []byte, at int64) error {
	if _, err := s.dio.f.WriteAt(b, at); err != nil {
		s.dio.tailOK = false
		return err
	}
	return nil
}

// directFailed handles a failed direct write of b at pos: a device that
// refuses the alignment (EINVAL, before any byte is written) turns the
// segment to buffered writes, which write all of b again; any other
// error is the caller's.
func (s *segment) directFailed(err error, b []byte, pos int64) error {
	if !isDirectRefusal(err) {
		return err
	}
	s.dio.refuse()
	return s.writeAtLocked(b, pos, false)
}

// loadTail reads the file's bytes in [start, pos) into the partial block,
// after writes through the page cache or a truncation.
func (s *segment) loadTail(start, pos int64) error {
	if cap(s.dio.tail) < directBlock {
		s.dio.tail = make([]byte, 0, directBlock)
	}
	t := s.dio.tail[:pos-start]
	if _, err := s.f.ReadAt(t, start); err != nil {
		if err == io.EOF {
			err = fmt.Errorf("%w: segment shorter than its size", ErrCorrupt)
		}
		return fmt.Errorf("log: read the last block: %w", err)
	}
	s.dio.tail = t
	s.dio.tailOK = true
	return nil
}

// closeDirect writes what is pending, closes the O_DIRECT descriptor
// and cuts the padding, if any, leaving the file as long as the segment.
// Sealing calls it.
func (s *segment) closeDirect() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.stopZeroing()
	err := s.writePendingLocked()
	if s.dio.f != nil {
		if cerr := s.dio.f.Close(); err == nil {
			err = cerr
		}
		s.dio.f = nil
		s.dio.open.Store(false)
	}
	if s.dio.padded && err == nil {
		if terr := s.f.Truncate(s.w.size); terr != nil {
			err = fmt.Errorf("log: cut direct-write padding: %w", terr)
		}
		s.dio.padded = false
	}
	s.dio.tailOK = false
	return err
}

// padded reports whether the bytes of f in [from, to), after a segment's
// last valid batch, are what direct writes leave there: zeros, less than
// a block of them past the last write, or more ahead of it (zeroahead.go).
func padded(f *os.File, from, to int64) bool {
	ok, err := allZeros(f, from, to)
	return ok && err == nil
}
