package log

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
)

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	baseDigits      = 20
)

// segment is one .log file and its indexes. Its metadata exists twice:
// w, the appender's working copy, and pub, what readers see. The appender
// changes w and then, under Log.mu, copies it to pub; pub's slices share
// w's backing arrays, which is safe because elements below a published
// length are never written again.
type segment struct {
	base int64
	dir  string
	f    *os.File // read and written with ReadAt/WriteAt; closed on delete
	// wmu serializes the writes to the file: the appender's, and the
	// flush's of the bytes its tail cache holds for it (write-back).
	wmu sync.Mutex
	// dio is the segment's direct writing (direct.go), while active.
	// REQUIRES: wmu held.
	dio directState
	// zero is the active segment's zero-ahead (zeroahead.go).
	// REQUIRES: wmu held.
	zero zeroAhead
	// cache holds the segment's bytes last appended directly, when the
	// log has a tail cache (tailcache.go). Set by the appender, read by
	// readers.
	cache atomic.Pointer[segCache]

	// w is owned by the holder of Log.appendMu (or by Open before the log
	// is shared).
	w segMeta
	// rollBase is when the segment's first batch was appended, for
	// segment.ms (the first batch's max timestamp after recovery).
	// REQUIRES: Log.appendMu held.
	rollBase int64
	// modTime is the last append time in ms (the file's mtime after
	// recovery): a segment's age for retention when its batches carry no
	// timestamps. REQUIRES: Log.appendMu held.
	modTime int64

	// pub is the published copy of w. REQUIRES: Log.mu held (read or
	// write).
	pub segMeta

	// synced is how many bytes of the file are known durable.
	// REQUIRES: Log.flushMu held.
	synced int64
	// dropped is how many bytes from the start of the file have been
	// dropped from the page cache (cache.go). Only the log's flush loop
	// touches it.
	dropped int64
	// deleted is set (under Log.mu) when retention removes the segment,
	// before its file is closed: a flush that fails on it then knows the
	// failure is not a disk error.
	deleted atomic.Bool
}

// segMeta is what is known about a segment's contents.
// Invariant: size == sum of batch sizes; next-1 is the last offset held
// (next == base when empty); index and timeIndex are sorted.
type segMeta struct {
	size      int64
	next      int64
	index     []indexEntry
	timeIndex []timeEntry
	// maxTs is the largest batch max timestamp, -1 when none;
	// maxTsOffset is the base offset of the first batch that has it, -1
	// when the segment is empty.
	maxTs       int64
	maxTsOffset int64

	// sinceIndex is the bytes appended since the last offset index entry;
	// timeIndexTs is the timestamp of the last time index entry.
	sinceIndex  int64
	timeIndexTs int64

	// aborted is the aborted-transaction index: the transactions whose
	// ABORT marker is in this segment, in marker order.
	aborted []AbortedTxn
}

func newSegMeta(base int64) segMeta {
	return segMeta{next: base, maxTs: -1, maxTsOffset: -1, timeIndexTs: -1}
}

// add accounts for a batch appended at the end of the segment: its size,
// offsets, max timestamp (which for LogAppendTime is the stamped one), and
// sparse index entries every interval bytes.
func (m *segMeta) add(base int64, h *batchHeader, interval int64) {
	if h.maxTimestamp > m.maxTs || m.maxTsOffset < 0 {
		m.maxTs = max(m.maxTs, h.maxTimestamp)
		m.maxTsOffset = h.baseOffset
	}
	if m.size > 0 && m.sinceIndex >= interval {
		m.index = append(m.index, indexEntry{rel: uint32(h.baseOffset - base), pos: uint32(m.size)})
		m.sinceIndex = 0
		m.addTimeEntry(base)
	}
	m.sinceIndex += h.size
	m.size += h.size
	m.next = h.lastOffset() + 1
}

// addTimeEntry records the max timestamp so far in the time index if it
// grew since the last entry.
func (m *segMeta) addTimeEntry(base int64) {
	if m.maxTs > m.timeIndexTs && m.maxTsOffset >= 0 {
		m.timeIndex = append(m.timeIndex, timeEntry{ts: m.maxTs, rel: uint32(m.maxTsOffset - base)})
		m.timeIndexTs = m.maxTs
	}
}

func segmentName(base int64) string {
	s := strconv.FormatInt(base, 10)
	for len(s) < baseDigits {
		s = "0" + s
	}
	return s
}

// parseSegmentName returns the base offset of a file named like a segment
// log (20 digits and ".log").
func parseSegmentName(name string) (int64, bool) {
	if len(name) != baseDigits+len(logSuffix) || filepath.Ext(name) != logSuffix {
		return 0, false
	}
	digits := name[:baseDigits]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

func (s *segment) path(suffix string) string {
	return filepath.Join(s.dir, segmentName(s.base)+suffix)
}

// createSegment makes an empty segment file at base. Any index files left
// with that name are replaced when the segment is rolled.
func createSegment(dir string, base int64) (*segment, error) {
	s := &segment{base: base, dir: dir, w: newSegMeta(base)}
	f, err := os.OpenFile(s.path(logSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log: create segment: %w", err)
	}
	s.f = f
	s.pub = s.w
	return s, nil
}

// openSegment opens an existing segment file; recovery fills in its
// metadata.
func openSegment(dir string, base int64) (*segment, int64, error) {
	s := &segment{base: base, dir: dir, w: newSegMeta(base)}
	f, err := os.OpenFile(s.path(logSuffix), os.O_RDWR, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("log: open segment: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("log: stat segment: %w", err)
	}
	s.f = f
	s.modTime = fi.ModTime().UnixMilli()
	return s, fi.Size(), nil
}

// writeIndexes writes the segment's index files from w, each in one write,
// and fsyncs them. REQUIRES: Log.appendMu held (or Open).
func (s *segment) writeIndexes() error {
	if err := writeFileSync(s.path(indexSuffix), encodeIndex(s.w.index)); err != nil {
		return fmt.Errorf("log: write offset index: %w", err)
	}
	if err := writeFileSync(s.path(timeIndexSuffix), encodeTimeIndex(s.w.timeIndex)); err != nil {
		return fmt.Errorf("log: write time index: %w", err)
	}
	if err := writeFileSync(s.path(txnIndexSuffix), encodeTxnIndex(s.w.aborted)); err != nil {
		return fmt.Errorf("log: write aborted transaction index: %w", err)
	}
	return nil
}

// seal finishes a segment that will take no more appends: the time index
// gets an exact final entry and the index files are written.
func (s *segment) seal() error {
	if err := s.closeDirect(); err != nil {
		return err
	}
	s.w.addTimeEntry(s.base)
	return s.writeIndexes()
}

// dropCache gives the segment's cached bytes back to the tail cache:
// when it is closed, deleted or swapped away.
func (s *segment) dropCache() {
	if sc := s.cache.Swap(nil); sc != nil {
		sc.drop()
	}
}

// remove deletes the segment's files; its file must be closed.
func (s *segment) remove() error {
	var errs []error
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if err := os.Remove(s.path(suf)); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// largestTime is the segment's age for retention: its largest timestamp,
// or its modification time when its batches carry none.
// REQUIRES: Log.appendMu held.
func (s *segment) largestTime() int64 {
	if s.w.maxTs >= 0 {
		return s.w.maxTs
	}
	return s.modTime
}

// syncDir fsyncs a directory so file creations and deletions in it are
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
