package log

import (
	"errors"
	"io"
	"math"
	"os"
)

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp in the log (ListOffsets -3, KIP-734): the first record
// carrying the largest batch max timestamp, found by decoding that batch.
// ok is false when the log holds no batches.
func (l *Log) MaxTimestamp() (offset, ts int64, ok bool) {
	for attempt := 0; attempt <= readRetries; attempt++ {
		if l.closed.Load() {
			return 0, 0, false
		}
		l.mu.RLock()
		var best *segment
		for _, s := range l.segments {
			if s.pub.maxTsOffset >= 0 && (best == nil || s.pub.maxTs > best.pub.maxTs) {
				best = s
			}
		}
		if best == nil {
			l.mu.RUnlock()
			return 0, 0, false
		}
		v := segView{f: best.f, base: best.base, m: best.pub, c: best.cache.Load(), limit: readLimit(l.cfg.Load())}
		batch, maxTs := best.pub.maxTsOffset, best.pub.maxTs
		hit := l.maxTsHit
		l.mu.RUnlock()
		if hit.valid && hit.batch == batch && hit.ts == maxTs {
			return hit.off, maxTs, true
		}
		off, err := v.maxTimestampRecord(batch, maxTs)
		if errors.Is(err, os.ErrClosed) {
			continue
		}
		if err != nil {
			l.logger.Warn("max timestamp lookup", "dir", l.dir, "batch", batch, "err", err)
			return batch, maxTs, true
		}
		l.mu.Lock()
		l.maxTsHit = maxTsHit{valid: true, batch: batch, ts: maxTs, off: off}
		l.mu.Unlock()
		return off, maxTs, true
	}
	return 0, 0, false
}

// maxTsHit caches MaxTimestamp's answer for the batch it decoded.
type maxTsHit struct {
	valid          bool
	batch, ts, off int64
}

// maxTimestampRecord finds the first record with timestamp maxTs in the
// batch based at offset batch.
func (v *segView) maxTimestampRecord(batch, maxTs int64) (int64, error) {
	sc := newScanner(v, floorPos(v.m.index, relOf(batch, v.base)), v.m.size)
	for {
		h, pos, err := sc.next()
		if err == io.EOF {
			return batch, nil
		}
		if err != nil {
			return 0, err
		}
		if h.baseOffset < batch {
			continue
		}
		if h.attributes&attrLogAppendTime != 0 {
			return h.baseOffset, nil
		}
		b, err := sc.batch(pos, &h)
		if err != nil {
			return 0, err
		}
		off, _, ok, err := findRecord(b, &h, v.limit, func(_, ts int64) bool { return ts == maxTs })
		if err != nil || !ok {
			return h.lastOffset(), err
		}
		return off, nil
	}
}

// OffsetForTimestamp returns the offset and timestamp of the first record
// at or after the log start whose timestamp is >= ts, looking inside
// batches (decompressing them when needed). ok is false when there is
// none.
func (l *Log) OffsetForTimestamp(ts int64) (offset, foundTs int64, ok bool, err error) {
	for attempt := 0; ; attempt++ {
		if l.closed.Load() {
			return 0, 0, false, ErrClosed
		}
		offset, foundTs, ok, err = l.offsetForTimestampOnce(ts)
		if errors.Is(err, os.ErrClosed) && attempt < readRetries {
			continue
		}
		return offset, foundTs, ok, err
	}
}

func (l *Log) offsetForTimestampOnce(ts int64) (int64, int64, bool, error) {
	l.mu.RLock()
	start := l.start.Load()
	var views []segView
	for _, s := range l.segments {
		if s.pub.maxTsOffset >= 0 && s.pub.maxTs >= ts && s.pub.next > start {
			views = append(views, segView{f: s.f, base: s.base, m: s.pub, c: s.cache.Load(), limit: readLimit(l.cfg.Load())})
		}
	}
	l.mu.RUnlock()
	for i := range views {
		off, fts, ok, err := views[i].findTimestamp(ts, start)
		if err != nil || ok {
			return off, fts, ok, err
		}
	}
	return 0, 0, false, nil
}

// findTimestamp finds the first record at or after start with timestamp
// >= target in the segment: the time index gives the batch to scan from,
// the offset index its position, and batch headers the first batch whose
// max timestamp reaches target, which is then decoded.
func (v *segView) findTimestamp(target, start int64) (int64, int64, bool, error) {
	pos := floorPos(v.m.index, timeFloor(v.m.timeIndex, target))
	if start > v.base {
		pos = max(pos, floorPos(v.m.index, relOf(start, v.base)))
	}
	sc := newScanner(v, pos, v.m.size)
	for {
		h, p, err := sc.next()
		if err == io.EOF {
			return 0, 0, false, nil
		}
		if err != nil {
			return 0, 0, false, err
		}
		if h.lastOffset() < start || h.maxTimestamp < target {
			continue
		}
		b, err := sc.batch(p, &h)
		if err != nil {
			return 0, 0, false, err
		}
		off, ts, ok, err := findRecord(b, &h, v.limit, func(off, ts int64) bool { return ts >= target && off >= start })
		if err != nil || ok {
			return off, ts, ok, err
		}
	}
}

// relOf is off relative to base, clamped to what an index entry holds.
func relOf(off, base int64) uint32 {
	return uint32(min(max(off-base, 0), math.MaxUint32))
}
