package log

import "math"

// AppendResult describes an append.
type AppendResult struct {
	// BaseOffset and LastOffset are the first and last offsets assigned.
	BaseOffset, LastOffset int64
	// LogAppendTime is the time stamped on the batches in ms, or -1 when
	// the log keeps producer timestamps (CreateTime).
	LogAppendTime int64
	// LogStartOffset is the log start offset after the append.
	LogStartOffset int64
	// Records is the number of records appended.
	Records int64
}

// Append validates batches — one or more concatenated RecordBatch v2, as a
// producer sent them — and writes them at the end of the log with
// consecutive offsets, in one write. If any batch is invalid nothing is
// written and the error wraps ErrCorrupt or ErrMessageTooLarge.
//
// Append patches batches in place (base offset, leader epoch, and for
// LogAppendTime the timestamp type, max timestamp and CRC) and does not
// keep it. One appender at a time: the caller serialises calls.
func (l *Log) Append(batches []byte, leaderEpoch int32) (AppendResult, error) {
	cfg := l.cfg.Load()
	records, err := checkBatches(batches, cfg.MaxMessageBytes)
	if err != nil {
		return AppendResult{}, err
	}

	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return AppendResult{}, ErrClosed
	}
	if err := l.broken(); err != nil {
		return AppendResult{}, err
	}
	now := l.now()
	nowMs := now.UnixMilli()
	s := l.active
	if l.shouldRoll(s, cfg, int64(len(batches)), records, nowMs) {
		if err := l.rollLocked(); err != nil {
			return AppendResult{}, err
		}
		s = l.active
	}

	appendTime := int64(-1)
	if cfg.LogAppendTime {
		appendTime = nowMs
	}
	base := l.end.Load()
	pos := s.w.size
	m := s.w // the new metadata, published after the write
	interval := int64(cfg.IndexIntervalBytes)
	off := base
	for p := int64(0); p < int64(len(batches)); {
		b := batches[p:]
		h, _ := parseHeader(b) // checked by checkBatches
		stampBatch(b, h.size, off, leaderEpoch, appendTime)
		h.baseOffset = off
		if appendTime >= 0 {
			h.maxTimestamp = appendTime
		}
		m.add(s.base, &h, interval)
		off = h.lastOffset() + 1
		p += h.size
	}
	if _, err := s.f.WriteAt(batches, pos); err != nil {
		return AppendResult{}, l.fail(err)
	}
	if pos == 0 {
		s.rollBase = nowMs
	}
	s.modTime = nowMs
	s.w = m

	l.mu.Lock()
	l.publishLocked(s)
	l.end.Store(off)
	l.size.Add(int64(len(batches)))
	l.mu.Unlock()

	if cfg.FlushMessages > 1 && off-l.flushed.Load() >= cfg.FlushMessages {
		l.wake()
	}
	return AppendResult{
		BaseOffset:     base,
		LastOffset:     off - 1,
		LogAppendTime:  appendTime,
		LogStartOffset: l.start.Load(),
		Records:        records,
	}, nil
}

// shouldRoll reports whether an append of n bytes and records records must
// go to a new segment: the active one is non-empty and would outgrow
// segment.bytes, has been open segment.ms, or could not express the new
// offsets relative to its base.
// REQUIRES: l.appendMu held.
func (l *Log) shouldRoll(s *segment, cfg *Config, n, records, nowMs int64) bool {
	if s.w.size == 0 {
		return false
	}
	switch {
	case s.w.size+n > cfg.SegmentBytes:
		return true
	case nowMs-s.rollBase >= cfg.SegmentMs.Milliseconds():
		return true
	case l.end.Load()+records-1-s.base > math.MaxInt32:
		return true
	}
	return false
}

// rollLocked seals the active segment and starts a new one at the log end
// offset. The old segment's bytes may still be unflushed; a flush syncs
// every segment with unsynced bytes.
// REQUIRES: l.appendMu held.
func (l *Log) rollLocked() error {
	old := l.active
	if err := old.seal(); err != nil {
		return l.fail(err)
	}
	s, err := createSegment(l.dir, l.end.Load())
	if err != nil {
		return l.fail(err)
	}
	l.mu.Lock()
	l.publishLocked(old)
	l.segments = append(l.segments, s)
	l.dirGen++
	l.mu.Unlock()
	l.active = s
	l.logger.Debug("rolled segment", "dir", l.dir, "base", s.base)
	return nil
}

// Roll seals the active segment and starts a new one at the log end
// offset, if the active one is non-empty (Kafka's forced roll, used by
// tools and tests; appends and retention roll by themselves).
func (l *Log) Roll() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	if err := l.broken(); err != nil {
		return err
	}
	if l.active.w.size == 0 {
		return nil
	}
	return l.rollLocked()
}
