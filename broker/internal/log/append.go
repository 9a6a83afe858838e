package log

import (
	"fmt"
	"math"
)

// AppendResult describes an append.
type AppendResult struct {
	// BaseOffset and LastOffset are the first and last offsets assigned.
	// For a duplicate they are the original batch's.
	BaseOffset, LastOffset int64
	// LogAppendTime is the time stamped on the batches in ms, or -1 when
	// the log keeps producer timestamps (CreateTime).
	LogAppendTime int64
	// LogStartOffset is the log start offset after the append.
	LogStartOffset int64
	// Records is the number of records appended (0 for a duplicate).
	Records int64
	// Duplicate is set when the append was a producer's retry of a batch
	// already written: nothing was written, and the offsets are those the
	// batch got the first time.
	Duplicate bool
}

// AppendOptions qualifies an append.
type AppendOptions struct {
	// LeaderEpoch is stamped on every batch.
	LeaderEpoch int32
	// VerifyTxnStart makes a transactional batch that would open a
	// transaction fail with producer.ErrInvalidTxnState unless its
	// producer is VerifiedProducer: the transaction coordinator has
	// confirmed that the partition is in the producer's transaction
	// (KIP-890). When false, transactions open without a check.
	VerifyTxnStart   bool
	VerifiedProducer int64
}

// Append is AppendWith with only a leader epoch.
func (l *Log) Append(batches []byte, leaderEpoch int32) (AppendResult, error) {
	return l.AppendWith(batches, AppendOptions{LeaderEpoch: leaderEpoch})
}

// AppendWith validates batches — one or more concatenated RecordBatch v2,
// as a producer sent them — and writes them at the end of the log with
// consecutive offsets, in one write. If any batch is invalid nothing is
// written and the error wraps ErrCorrupt, ErrMessageTooLarge,
// ErrUnsupportedCompression or ErrInvalidRecord (control batches are written only by AppendMarker).
//
// Batches with a producer id are checked against the producer state (see
// package producer) and recorded in it; a failed check writes nothing and
// returns an error wrapping a producer sentinel. When every such batch is
// a retry of one already written, nothing is written and the result gives
// the original offsets with Duplicate set. Batches without a producer id
// skip all of this.
//
// AppendWith patches batches in place (base offset, leader epoch, and for
// LogAppendTime the timestamp type, max timestamp and CRC) and does not
// keep it. One appender at a time: the caller serialises calls.
func (l *Log) AppendWith(batches []byte, o AppendOptions) (AppendResult, error) {
	cfg := l.cfg.Load()
	info, err := checkBatches(batches, cfg)
	if err != nil {
		return AppendResult{}, err
	}
	if info.control {
		return AppendResult{}, fmt.Errorf("%w: clients may not write control batches", ErrInvalidRecord)
	}

	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return AppendResult{}, ErrClosed
	}
	if err := l.broken(); err != nil {
		return AppendResult{}, err
	}
	if info.producers {
		dup, isDup, err := l.checkProducersLocked(batches, &o)
		if err != nil {
			return AppendResult{}, err
		}
		if isDup {
			return AppendResult{
				BaseOffset:     dup.FirstOffset,
				LastOffset:     dup.LastOffset,
				LogAppendTime:  -1,
				LogStartOffset: l.start.Load(),
				Duplicate:      true,
			}, nil
		}
	}
	return l.writeLocked(batches, info, cfg, o.LeaderEpoch)
}

// writeLocked writes checked batches at the log end, rolling first when
// due, and records their producers (l.pbatches, filled by
// checkProducersLocked) before the new end is published, so no reader
// sees a transactional batch that the first unstable offset does not
// cover yet.
// REQUIRES: l.appendMu held.
func (l *Log) writeLocked(batches []byte, info batchesInfo, cfg *Config, leaderEpoch int32) (AppendResult, error) {
	now := l.now()
	nowMs := now.UnixMilli()
	s := l.active
	if l.shouldRoll(s, cfg, int64(len(batches)), info.records, nowMs) {
		if err := l.rollLocked(); err != nil {
			return AppendResult{}, err
		}
		s = l.active
	}

	// A new leader epoch is checkpointed before its first batch is
	// written (see epochs.go).
	if err := l.assignEpochLocked(leaderEpoch); err != nil {
		return AppendResult{}, err
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
	for p, i := int64(0), 0; p < int64(len(batches)); i++ {
		b := batches[p:]
		h, _ := parseHeader(b) // checked by checkBatches
		stampBatch(b, h.size, off, leaderEpoch, appendTime)
		h.baseOffset = off
		if appendTime >= 0 {
			h.maxTimestamp = appendTime
		}
		if info.producers {
			pb := &l.pbatches[i]
			pb.FirstOffset, pb.LastOffset, pb.Timestamp = off, h.lastOffset(), nowMs
		}
		m.add(s.base, &h, interval)
		off = h.lastOffset() + 1
		p += h.size
	}
	if err := l.writeBatches(s, cfg, batches, pos); err != nil {
		return AppendResult{}, l.fail(err)
	}
	if pos == 0 {
		s.rollBase = nowMs
	}
	s.modTime = nowMs
	s.w = m
	if info.producers {
		l.applyProducersLocked()
	}

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
		Records:        info.records,
	}, nil
}

// writeBatches puts batches at pos in s: into the tail cache for the
// flush (or WaitWritten) to write (write-back), or into the file when
// the log has no tail cache for it or the cache no page.
// REQUIRES: l.appendMu held.
func (l *Log) writeBatches(s *segment, cfg *Config, batches []byte, pos int64) error {
	direct := l.direct.Load()
	sc, prefix, err := l.tailCacheFor(s, pos, direct)
	if err != nil {
		return err
	}
	if sc != nil {
		cached, err := l.appendBack(s, sc, prefix, batches, pos)
		if cached || err != nil {
			return err
		}
		// No page to be had: write it, and start a new run later.
		if err := s.writeAt(batches, pos, direct); err != nil {
			return err
		}
		s.dropCache()
		return nil
	}
	return s.writeAt(batches, pos, direct)
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
	// The producer state as of the new segment's base: on open, replay
	// starts here rather than at the start of the log.
	l.writeSnapshotLocked()
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
