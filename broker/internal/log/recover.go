package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// recover builds the log from what is in its directory: every segment
// file, oldest first. Older segments trust their index files once those
// agree with the .log (their entries are in order and in range, and a walk
// of batch headers from the last offset index entry ends exactly at the end
// of the file); otherwise, and always for the newest segment, the segment
// is scanned batch by batch checking lengths, offsets and CRCs, cut at the
// end of the last valid batch, and its indexes rebuilt. Files that are not
// segments are left alone.
func (l *Log) recover() error {
	if err := l.finishSwaps(); err != nil { // see swap.go
		return err
	}
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("log: open: %w", err)
	}
	var bases []int64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if base, ok := parseSegmentName(e.Name()); ok {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	ckpt := l.readStartOffset()
	epochCkpt, epochsLoaded := l.loadEpochs()
	os.Remove(filepath.Join(l.dir, startOffsetFile+".tmp"))
	// needTxn holds the segments whose aborted-transaction index must be
	// rebuilt from the log (see loadProducers).
	needTxn := make(map[*segment]bool)
	newestTrusted := false

	for i, base := range bases {
		s, fileSize, err := openSegment(l.dir, base)
		if err != nil {
			return err
		}
		l.segments = append(l.segments, s)
		newest := i == len(bases)-1
		limit := int64(math.MaxInt64) // offsets must stay below the next segment's base
		if !newest {
			limit = bases[i+1]
		}
		if !newest {
			if err := l.loadSegment(s, fileSize, limit); err == nil {
				if !l.loadTxnIndex(s, limit) {
					needTxn[s] = true
				}
				continue
			} else {
				l.logger.Warn("rebuilding segment index", "dir", l.dir, "base", base, "reason", err)
			}
		}
		if err := l.scanSegment(s, fileSize, limit, newest); err != nil {
			return err
		}
		if newest {
			newestTrusted = l.loadTxnIndex(s, s.w.next)
		} else {
			needTxn[s] = true
		}
	}

	if len(l.segments) == 0 {
		s, err := createSegment(l.dir, max(ckpt, 0))
		if err != nil {
			return err
		}
		l.segments = append(l.segments, s)
	}
	newest := l.segments[len(l.segments)-1]
	end := newest.w.next
	start := max(l.segments[0].base, ckpt)
	if start > end {
		// The checkpoint says records up to start were deleted, but the
		// log (cut at a torn tail) ends before it: begin again there.
		l.logger.Warn("log ends before its start offset checkpoint; starting empty", "dir", l.dir, "start", start, "end", end)
		for _, s := range l.segments {
			s.f.Close()
			if err := s.remove(); err != nil {
				return fmt.Errorf("log: open: %w", err)
			}
		}
		s, err := createSegment(l.dir, start)
		if err != nil {
			return err
		}
		l.segments = []*segment{s}
		newest, end = s, start
		clear(needTxn)
	}
	if err := l.loadProducers(needTxn, newestTrusted); err != nil {
		return err
	}
	if err := l.finishEpochs(epochCkpt, epochsLoaded, end); err != nil {
		return err
	}

	// What survived recovery is made durable now, so flushes only track
	// what is appended from here on.
	var size int64
	for _, s := range l.segments {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("log: open: sync segment: %w", err)
		}
		s.synced = s.w.size
		s.pub = s.w
		size += s.w.size
	}
	if err := syncDir(l.dir); err != nil {
		return fmt.Errorf("log: open: sync dir: %w", err)
	}
	// segment.ms counts from the first batch's timestamp after a restart
	// (its first append time is not recorded), or from now when it has
	// none or it lies in the future.
	if now := l.now().UnixMilli(); newest.rollBase <= 0 || newest.rollBase > now {
		newest.rollBase = now
	}
	l.active = newest
	l.start.Store(start)
	l.end.Store(end)
	l.size.Store(size)
	l.flushed.Store(end)
	return nil
}

// loadSegment fills in an older segment's metadata from its index files
// and a header walk of the bytes after the last offset index entry. An
// error means the files cannot be trusted and the segment must be scanned.
func (l *Log) loadSegment(s *segment, fileSize, limit int64) error {
	span := limit - s.base
	raw, err := os.ReadFile(s.path(indexSuffix))
	if err != nil {
		return err
	}
	idx, err := decodeIndex(raw, fileSize, span)
	if err != nil {
		return err
	}
	raw, err = os.ReadFile(s.path(timeIndexSuffix))
	if err != nil {
		return err
	}
	tidx, err := decodeTimeIndex(raw, span)
	if err != nil {
		return err
	}
	if fileSize == 0 && len(tidx) > 0 {
		return errors.New("time index entries for an empty segment")
	}
	m := newSegMeta(s.base)
	m.index, m.timeIndex, m.size = idx, tidx, fileSize
	if n := len(tidx); n > 0 {
		m.maxTs, m.maxTsOffset, m.timeIndexTs = tidx[n-1].ts, s.base+int64(tidx[n-1].rel), tidx[n-1].ts
	}
	var pos int64
	want := s.base // the first batch walked must start at or after this
	if n := len(idx); n > 0 {
		pos = int64(idx[n-1].pos)
		want = s.base + int64(idx[n-1].rel)
	}
	sc := newScanner(s.f, pos, fileSize)
	for first := true; ; first = false {
		h, _, err := sc.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if (first && pos > 0 && h.baseOffset != want) || h.baseOffset < want || h.lastOffset() >= limit {
			return fmt.Errorf("batch at offset %d disagrees with the index", h.baseOffset)
		}
		if h.maxTimestamp > m.maxTs || m.maxTsOffset < 0 {
			m.maxTs = max(m.maxTs, h.maxTimestamp)
			m.maxTsOffset = h.baseOffset
		}
		want = h.lastOffset() + 1
		m.next = want
	}
	if fileSize > 0 && m.next == s.base && pos == 0 {
		return errors.New("no batches found")
	}
	s.w = m
	return nil
}

// scanSegment rebuilds a segment's metadata by reading every batch,
// checking its length, offsets (ascending, below limit) and CRC, and cuts
// the file at the end of the last valid batch. A segment other than the
// newest gets its index files rewritten.
func (l *Log) scanSegment(s *segment, fileSize, limit int64, newest bool) error {
	interval := int64(l.cfg.Load().IndexIntervalBytes)
	m := newSegMeta(s.base)
	sc := newScanner(s.f, 0, fileSize)
	firstTs := int64(-1)
	var cause error
	for {
		h, pos, err := sc.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			cause = err
			break
		}
		if h.baseOffset < m.next || h.lastOffset() >= limit || h.lastOffset()-s.base > math.MaxInt32 {
			cause = fmt.Errorf("%w: batch offsets [%d, %d] out of order", ErrCorrupt, h.baseOffset, h.lastOffset())
			break
		}
		b, err := sc.batch(pos, &h)
		if err != nil {
			cause = err
			break
		}
		if !crcOK(b) {
			cause = fmt.Errorf("%w: CRC mismatch at offset %d", ErrCorrupt, h.baseOffset)
			break
		}
		if m.size == 0 {
			firstTs = h.maxTimestamp
		}
		m.add(s.base, &h, interval)
		l.noteEpoch(&h)
	}
	if cause != nil && !errors.Is(cause, ErrCorrupt) && !errors.Is(cause, errTorn) {
		return fmt.Errorf("log: recover segment %d: %w", s.base, cause)
	}
	if m.size < fileSize {
		if padded(s.f, m.size, fileSize) {
			// Direct writes left it (direct.go): nothing was lost.
			l.logger.Debug("cutting direct-write padding", "dir", l.dir, "base", s.base, "from", fileSize, "to", m.size)
		} else {
			l.logger.Warn("truncating segment at last valid batch", "dir", l.dir, "base", s.base,
				"from", fileSize, "to", m.size, "cause", cause)
		}
		if err := s.f.Truncate(m.size); err != nil {
			return fmt.Errorf("log: recover segment %d: truncate: %w", s.base, err)
		}
	}
	s.w = m
	if firstTs >= 0 {
		s.rollBase = firstTs
	}
	if !newest {
		if err := s.seal(); err != nil {
			return err
		}
	}
	return nil
}

// loadTxnIndex loads a segment's aborted-transaction index and reports
// whether it could be trusted: present, well formed, and with every
// marker in [s.base, limit).
func (l *Log) loadTxnIndex(s *segment, limit int64) bool {
	raw, err := os.ReadFile(s.path(txnIndexSuffix))
	if err != nil {
		if !os.IsNotExist(err) {
			l.logger.Warn("read aborted transaction index", "dir", l.dir, "base", s.base, "err", err)
		}
		return false
	}
	entries, err := decodeTxnIndex(raw, s.base, limit)
	if err != nil {
		l.logger.Warn("rebuilding aborted transaction index", "dir", l.dir, "base", s.base, "reason", err)
		return false
	}
	s.w.aborted = entries
	return true
}
