package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Log compaction (cleanup.policy=compact).
//
// A compacted log is split by the cleaner checkpoint into a clean section,
// below it, where every key appears at most once, and a dirty section
// above it. Clean builds a key → newest offset map of the dirty section,
// up to the first uncleanable offset (the active segment, the first
// unstable offset, the flushed offset, and any segment holding records
// younger than min.compaction.lag.ms), then rewrites every closed segment
// from the start of the log to the end of what the map covers, keeping a
// record only if no newer record of its key is in the map:
//
//	 clean section          dirty section            uncleanable
//	|----------------------|------------------------|-------|--------|
//	start               checkpoint            map end        active
//	  rewritten, in groups of segments merged up to segment.bytes
//
// Offsets never change: a rewritten batch keeps its base offset, last
// offset delta and every header field but its record count, length and
// CRC, and its surviving records keep their bytes. Records without a key
// and records of aborted transactions go. Tombstones and transaction
// markers stay until delete.retention.ms after the clean that first kept
// them (the delete horizon, stamped on the batch as KIP-534 does); a
// marker goes only once no batch of its transaction is left. Cleaned
// segments replace the old ones through a crash-safe swap (swap.go).

// cleanerCheckpointFile is the cleaner checkpoint: the first dirty offset
// and the earliest delete horizon the last clean left behind, decimal.
const cleanerCheckpointFile = "cleaner-offset-checkpoint"

// DefaultCleanerBufferBytes bounds the offset map of one clean
// (log.cleaner.dedupe.buffer.size).
const DefaultCleanerBufferBytes = 128 << 20

// errCleanRaced reports a clean whose segments changed (retention,
// DeleteRecords) before it could swap them in; nothing was changed.
var errCleanRaced = errors.New("log: segments changed during cleaning")

// errCleanStopped reports a clean abandoned because the log closed or the
// cleaner stopped.
var errCleanStopped = errors.New("log: cleaning stopped")

// CleanStats describes one Clean.
type CleanStats struct {
	// Cleaned is false when the log was not due: its policy is not
	// compact, or too little of it is dirty (min.cleanable.dirty.ratio,
	// with no record past max.compaction.lag.ms and no delete horizon
	// reached).
	Cleaned bool
	// BytesRead and BytesWritten count segment bytes read (building the
	// offset map and rewriting) and written.
	BytesRead, BytesWritten int64
	// RecordsRemoved counts records dropped: older versions of a key,
	// expired tombstones, records without a key, aborted records and
	// removed markers.
	RecordsRemoved int64
	// SegmentsBefore and SegmentsAfter count the rewritten segments
	// before and after merging.
	SegmentsBefore, SegmentsAfter int
	// CleanedTo is the checkpoint after the clean: the first dirty offset.
	CleanedTo int64
	// Duration is the wall time the clean took.
	Duration time.Duration
	// DirtyRatioBefore and DirtyRatioAfter are dirty bytes over cleanable
	// bytes before and after.
	DirtyRatioBefore, DirtyRatioAfter float64
}

// cleanState is a log's cleaner state.
type cleanState struct {
	mu sync.Mutex // serialises cleans of the log; guards the following
	// hook, set by tests, is called after each step of a swap; returning
	// true simulates a crash there: the clean returns at once, leaving
	// the files as they are.
	hook func(step string) bool

	// ckpt is the checkpoint (first dirty offset) and horizon the
	// earliest delete horizon (ms, 0 when none) left by the last clean;
	// both loaded from the checkpoint file once. Written under mu.
	loadOnce sync.Once
	ckpt     atomic.Int64
	horizon  atomic.Int64
}

// cleanSeg is a closed segment as the cleaner saw it.
type cleanSeg struct {
	s *segment
	m segMeta
	// end bounds the segment's offsets: the next segment's base.
	end int64
}

// cleanPlan is what a clean works on, taken under the append lock.
type cleanPlan struct {
	cfg   *Config
	nowMs int64
	segs  []cleanSeg // every closed segment
	// segs[dirty:unclean] are the dirty segments that may be cleaned.
	dirty, unclean         int
	cleanBytes, dirtyBytes int64
	ratio                  float64
	due                    bool
	// ckpt is the first dirty offset.
	ckpt int64
	// aborted lists the aborted transactions of every segment, by
	// producer, in marker order.
	aborted map[int64][]AbortedTxn
}

// Clean compacts the log if its policy includes compact and it is due:
// its dirty ratio is at least min.cleanable.dirty.ratio, or a dirty record
// is older than max.compaction.lag.ms, or a delete horizon has passed.
// now is the log's time for compaction lags and delete horizons. Clean
// holds the append lock only to look at the segments and to swap cleaned
// ones in, so appends and reads go on while it runs. Cleans of one log are
// serialised.
func (l *Log) Clean(now time.Time) (CleanStats, error) {
	return l.clean(now, nil, nil)
}

func (l *Log) clean(now time.Time, th *throttle, stop <-chan struct{}) (CleanStats, error) {
	c := &l.cleaning
	c.mu.Lock()
	defer c.mu.Unlock()
	began := time.Now()
	var st CleanStats
	p, err := l.planClean(now.UnixMilli())
	if err != nil {
		return st, err
	}
	st.DirtyRatioBefore, st.DirtyRatioAfter = p.ratio, p.ratio
	st.CleanedTo = c.ckpt.Load()
	if !p.due {
		return st, nil
	}
	pass := &cleanPass{
		l:       l,
		cfg:     p.cfg,
		nowMs:   p.nowMs,
		horizon: p.nowMs + p.cfg.DeleteRetention.Milliseconds(),
		aborted: p.aborted,
		seen:    make(map[int64]bool),
		th:      th,
		stop:    stop,
		st:      &st,
	}

	// The offset map covers whole dirty segments, as many as fit (at
	// least one).
	pass.om = newOffsetMap(l.cleanerBufferBytes())
	end := p.dirty
	for end < p.unclean && (end == p.dirty || !pass.om.full()) {
		if err := pass.buildMap(&p.segs[end]); err != nil {
			return st, err
		}
		end++
	}
	upTo := p.ckpt
	if end > p.dirty {
		upTo = p.segs[end-1].end
	}

	for _, g := range groupSegments(p.segs[:end], p.cfg) {
		st.SegmentsBefore += len(g)
		staged, err := pass.cleanGroup(g)
		if err != nil {
			return st, err
		}
		if staged == nil { // unchanged
			st.SegmentsAfter += len(g)
			continue
		}
		if err := l.swapIn(staged); err != nil {
			if errors.Is(err, errCleanRaced) {
				// Retention or DeleteRecords got there first; the
				// checkpoint stays and a later clean goes on.
				st.Cleaned = st.SegmentsAfter > 0
				return st, nil
			}
			return st, err
		}
		st.SegmentsAfter++
	}
	if err := l.writeCheckpoint(upTo, pass.nextHorizon); err != nil {
		return st, err
	}
	st.Cleaned = true
	st.CleanedTo = upTo
	st.Duration = time.Since(began)
	st.DirtyRatioAfter = l.DirtyRatio()
	l.logger.Info("cleaned log", "dir", l.dir, "upTo", upTo, "read", st.BytesRead, "written", st.BytesWritten,
		"removed", st.RecordsRemoved, "segments", st.SegmentsBefore, "after", st.SegmentsAfter, "took", st.Duration)
	return st, nil
}

// cleanerBufferBytes is the offset map budget; tests lower it.
func (l *Log) cleanerBufferBytes() int64 {
	if n := cleanerBufferOverride.Load(); n > 0 {
		return n
	}
	return DefaultCleanerBufferBytes
}

// cleanerBufferOverride lets tests force small offset maps.
var cleanerBufferOverride atomic.Int64

// planClean looks at the log under the append lock: it rolls the active
// segment when max.compaction.lag.ms says so, finds the dirty and
// uncleanable sections and decides whether a clean is due.
func (l *Log) planClean(nowMs int64) (*cleanPlan, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return nil, ErrClosed
	}
	if err := l.broken(); err != nil {
		return nil, err
	}
	cfg := l.cfg.Load()
	p := &cleanPlan{cfg: cfg, nowMs: nowMs}
	if !cfg.CleanupPolicy.Compact() {
		return p, nil
	}
	maxLag := cfg.MaxCompactionLag.Milliseconds()
	if cfg.MaxCompactionLag != math.MaxInt64 && l.active.w.size > 0 && nowMs-l.active.rollBase >= maxLag {
		if err := l.rollLocked(); err != nil {
			return nil, err
		}
	}
	l.loadCheckpoint()
	n := len(l.segments) - 1
	p.segs = make([]cleanSeg, n)
	for i, s := range l.segments[:n] {
		p.segs[i] = cleanSeg{s: s, m: s.w, end: l.segments[i+1].base}
	}
	p.aborted = make(map[int64][]AbortedTxn)
	for _, s := range l.segments {
		for _, a := range s.w.aborted {
			p.aborted[a.ProducerID] = append(p.aborted[a.ProducerID], a)
		}
	}

	ckpt, start := l.cleaning.ckpt.Load(), l.start.Load()
	if ckpt < start || ckpt > l.end.Load() {
		ckpt = start
	}
	p.ckpt = ckpt
	limit := min(l.active.base, l.flushed.Load())
	if fu := l.firstUnstable.Load(); fu >= 0 {
		limit = min(limit, fu)
	}
	p.dirty = sort.Search(n, func(i int) bool { return p.segs[i].end > ckpt })
	p.unclean = sort.Search(n, func(i int) bool { return p.segs[i].end > limit })
	p.unclean = max(p.unclean, p.dirty)
	if lag := cfg.MinCompactionLag.Milliseconds(); lag > 0 {
		for i := p.dirty; i < p.unclean; i++ {
			if p.segs[i].s.largestTime() > nowMs-lag {
				p.unclean = i
				break
			}
		}
	}
	for i := range p.segs[:p.unclean] {
		if i < p.dirty {
			p.cleanBytes += p.segs[i].m.size
		} else {
			p.dirtyBytes += p.segs[i].m.size
		}
	}
	if total := p.cleanBytes + p.dirtyBytes; total > 0 {
		p.ratio = float64(p.dirtyBytes) / float64(total)
	}
	forced := false
	if cfg.MaxCompactionLag != math.MaxInt64 && p.dirtyBytes > 0 {
		if ts, ok := firstBatchTimestamp(&p.segs[p.dirty]); ok && ts <= nowMs-maxLag {
			forced = true
		}
	}
	h := l.cleaning.horizon.Load()
	horizonDue := h > 0 && nowMs >= h && p.dirty > 0
	p.due = (p.dirtyBytes > 0 && (p.ratio >= cfg.MinCleanableDirtyRatio || forced)) || horizonDue
	return p, nil
}

// firstBatchTimestamp reads the max timestamp of a segment's first batch:
// when its oldest record was written, for max.compaction.lag.ms.
func firstBatchTimestamp(cs *cleanSeg) (int64, bool) {
	if cs.m.size < batchHeaderSize {
		return 0, false
	}
	var b [batchHeaderSize]byte
	if _, err := cs.s.f.ReadAt(b[:], 0); err != nil {
		return 0, false
	}
	h, err := parseHeader(b[:])
	if err != nil {
		return 0, false
	}
	return h.maxTimestamp, true
}

// DirtyRatio is the log's dirty bytes (closed segments at or after the
// cleaner checkpoint) over the bytes of its closed segments, 0 when it
// has none. It ignores the compaction lags.
func (l *Log) DirtyRatio() float64 {
	l.loadCheckpoint()
	ckpt := l.cleaning.ckpt.Load()
	l.mu.RLock()
	defer l.mu.RUnlock()
	var clean, dirty int64
	segs := l.segments[:max(len(l.segments)-1, 0)]
	for i, s := range segs {
		if l.segments[i+1].base <= ckpt {
			clean += s.pub.size
		} else {
			dirty += s.pub.size
		}
	}
	if clean+dirty == 0 {
		return 0
	}
	return float64(dirty) / float64(clean+dirty)
}

// loadCheckpoint reads the cleaner checkpoint file once; a missing or bad
// one means nothing is clean.
func (l *Log) loadCheckpoint() {
	l.cleaning.loadOnce.Do(func() {
		l.cleaning.ckpt.Store(-1)
		raw, err := os.ReadFile(filepath.Join(l.dir, cleanerCheckpointFile))
		if err != nil {
			return
		}
		f := strings.Fields(string(raw))
		if len(f) != 2 {
			l.logger.Warn("ignoring bad cleaner checkpoint", "dir", l.dir, "content", string(raw))
			return
		}
		off, err1 := strconv.ParseInt(f[0], 10, 64)
		h, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || off < 0 || h < 0 {
			l.logger.Warn("ignoring bad cleaner checkpoint", "dir", l.dir, "content", string(raw))
			return
		}
		l.cleaning.ckpt.Store(off)
		l.cleaning.horizon.Store(h)
	})
}

// writeCheckpoint records a clean's result, atomically. Losing it costs
// only a repeated clean.
func (l *Log) writeCheckpoint(off, horizon int64) error {
	data := strconv.FormatInt(off, 10) + " " + strconv.FormatInt(horizon, 10) + "\n"
	if err := writeFileAtomic(filepath.Join(l.dir, cleanerCheckpointFile), []byte(data)); err != nil {
		return fmt.Errorf("log: write cleaner checkpoint: %w", err)
	}
	l.cleaning.ckpt.Store(off)
	l.cleaning.horizon.Store(horizon)
	return nil
}

// groupSegments splits segments into runs that are rewritten as one:
// consecutive segments whose bytes add up to at most segment.bytes and
// whose offsets fit a segment's 32-bit relative offsets.
func groupSegments(segs []cleanSeg, cfg *Config) [][]cleanSeg {
	var groups [][]cleanSeg
	for i := 0; i < len(segs); {
		j := i + 1
		size := segs[i].m.size
		for j < len(segs) && size+segs[j].m.size <= cfg.SegmentBytes && segs[j].end-1-segs[i].s.base <= math.MaxInt32 {
			size += segs[j].m.size
			j++
		}
		groups = append(groups, segs[i:j])
		i = j
	}
	return groups
}

// cleanPass is the state of one clean across the segments it rewrites,
// oldest first.
type cleanPass struct {
	l       *Log
	cfg     *Config
	om      *offsetMap
	nowMs   int64
	horizon int64 // the delete horizon stamped on batches kept for the first time
	aborted map[int64][]AbortedTxn
	// seen marks producers with a transactional data batch since their
	// last marker: a marker may go only when nothing of its transaction
	// is left.
	seen map[int64]bool
	th   *throttle
	stop <-chan struct{}
	st   *CleanStats
	// nextHorizon is the earliest delete horizon among kept batches: when
	// a clean can next remove something even with nothing dirty.
	nextHorizon int64

	recs []record
	keep []bool
}

// checkStop reports whether the clean must stop.
func (c *cleanPass) checkStop() error {
	if c.l.closed.Load() {
		return errCleanStopped
	}
	if c.stop != nil {
		select {
		case <-c.stop:
			return errCleanStopped
		default:
		}
	}
	return nil
}

// read accounts for bytes read, waiting for the throttle.
func (c *cleanPass) read(n int64) error {
	c.st.BytesRead += n
	return c.th.take(n, c.stop)
}

// batches walks the batches of a segment, checking each as recovery
// would.
func (c *cleanPass) batches(cs *cleanSeg, fn func(batch []byte, h *batchHeader) error) error {
	sc := newScanner(cs.s.f, 0, cs.m.size)
	next := cs.s.base
	for {
		h, pos, err := sc.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, errTorn) {
				err = fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			return fmt.Errorf("log: clean segment %d: %w", cs.s.base, err)
		}
		if h.baseOffset < next || h.lastOffset() >= cs.end {
			return fmt.Errorf("log: clean segment %d: %w: batch offsets [%d, %d] out of order", cs.s.base, ErrCorrupt, h.baseOffset, h.lastOffset())
		}
		next = h.lastOffset() + 1
		b, err := sc.batch(pos, &h)
		if err != nil {
			return fmt.Errorf("log: clean segment %d: %w", cs.s.base, err)
		}
		if !crcOK(b) {
			return fmt.Errorf("log: clean segment %d: %w: CRC mismatch at offset %d", cs.s.base, ErrCorrupt, h.baseOffset)
		}
		if err := c.read(h.size); err != nil {
			return err
		}
		if err := c.checkStop(); err != nil {
			return err
		}
		if err := fn(b, &h); err != nil {
			return fmt.Errorf("log: clean segment %d: %w", cs.s.base, err)
		}
	}
}

// buildMap adds a dirty segment's keys to the offset map, skipping control
// batches and aborted transactions.
func (c *cleanPass) buildMap(cs *cleanSeg) error {
	return c.batches(cs, func(b []byte, h *batchHeader) error {
		if h.control() || (h.transactional() && c.isAborted(h.producerID, h.baseOffset)) {
			return nil
		}
		recs, err := batchRecordList(b, h, readLimit(c.cfg), c.recs)
		if err != nil {
			return err
		}
		c.recs = recs
		for i := range recs {
			if !recs[i].nullKey {
				c.om.put(recs[i].key, h.baseOffset+recs[i].offDelta)
			}
		}
		return nil
	})
}

// isAborted reports whether the transactional batch of producer pid at
// offset off belongs to an aborted transaction.
func (c *cleanPass) isAborted(pid, off int64) bool {
	txns := c.aborted[pid]
	i := sort.Search(len(txns), func(i int) bool { return txns[i].LastOffset >= off })
	return i < len(txns) && txns[i].FirstOffset <= off
}

func (c *cleanPass) noteHorizon(h int64) {
	if c.nextHorizon == 0 || h < c.nextHorizon {
		c.nextHorizon = h
	}
}

// cleanBatch appends to dst what is left of one batch: nothing, the batch
// as it was, or a rebuilt one. changed reports that the output differs.
func (c *cleanPass) cleanBatch(dst, b []byte, h *batchHeader) (out []byte, changed bool, err error) {
	hasHorizon := h.attributes&attrDeleteHorizon != 0
	pid := h.producerID
	if h.control() {
		if _, _, err := decodeMarker(b); err != nil {
			return append(dst, b...), false, nil // not ours to judge
		}
		if c.seen[pid] {
			// Batches of its transaction were read in this pass.
			delete(c.seen, pid)
			return append(dst, b...), false, nil
		}
		if hasHorizon {
			if c.nowMs >= h.baseTimestamp {
				c.st.RecordsRemoved += int64(h.records)
				return dst, true, nil
			}
			c.noteHorizon(h.baseTimestamp)
			return append(dst, b...), false, nil
		}
		recs, err := batchRecordList(b, h, readLimit(c.cfg), c.recs)
		if err != nil {
			return nil, false, err
		}
		c.recs = recs
		c.keep = slices.Grow(c.keep[:0], len(recs))[:len(recs)]
		for i := range c.keep {
			c.keep[i] = true
		}
		c.noteHorizon(c.horizon)
		out, err := rebuildBatch(dst, b, h, recs, c.keep, c.horizon)
		return out, true, err
	}
	if h.transactional() && pid >= 0 {
		c.seen[pid] = true
		if c.isAborted(pid, h.baseOffset) {
			c.st.RecordsRemoved += int64(h.records)
			return dst, true, nil
		}
	}
	recs, err := batchRecordList(b, h, readLimit(c.cfg), c.recs)
	if err != nil {
		return nil, false, err
	}
	c.recs = recs
	c.keep = slices.Grow(c.keep[:0], len(recs))[:len(recs)]
	expired := hasHorizon && c.nowMs >= h.baseTimestamp
	kept, tombstones := 0, false
	for i := range recs {
		r := &recs[i]
		keep := !r.nullKey
		if keep {
			if latest, ok := c.om.get(r.key); ok && h.baseOffset+r.offDelta < latest {
				keep = false
			}
		}
		if keep && r.nullValue {
			if expired {
				keep = false
			} else {
				tombstones = true
			}
		}
		c.keep[i] = keep
		if keep {
			kept++
		}
	}
	c.st.RecordsRemoved += int64(len(recs) - kept)
	if kept == 0 {
		return dst, true, nil
	}
	horizon := int64(-1)
	if tombstones {
		if hasHorizon {
			c.noteHorizon(h.baseTimestamp)
		} else {
			horizon = c.horizon
			c.noteHorizon(horizon)
		}
	}
	if kept == len(recs) && horizon < 0 {
		return append(dst, b...), false, nil
	}
	out, err = rebuildBatch(dst, b, h, recs, c.keep, horizon)
	return out, true, err
}

// cleanGroup rewrites a group of segments into one staged segment based
// at the first one's base. It returns nil when the group is a single
// segment that cleaning would leave unchanged.
func (c *cleanPass) cleanGroup(g []cleanSeg) (*stagedSegment, error) {
	st, err := c.l.createStaged(g)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			st.discard()
		}
	}()
	interval := int64(c.cfg.IndexIntervalBytes)
	changed := len(g) > 1
	var buf, out []byte
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := st.f.WriteAt(buf, st.m.size-int64(len(buf))); err != nil {
			return fmt.Errorf("log: write cleaned segment: %w", err)
		}
		c.st.BytesWritten += int64(len(buf))
		err := c.th.take(int64(len(buf)), c.stop)
		buf = buf[:0]
		return err
	}
	keptMarkers := make(map[int64]bool)
	for i := range g {
		cs := &g[i]
		st.modTime = max(st.modTime, cs.s.modTime)
		err := c.batches(cs, func(b []byte, h *batchHeader) error {
			var ch bool
			var err error
			out, ch, err = c.cleanBatch(out[:0], b, h)
			if err != nil {
				return err
			}
			changed = changed || ch
			if len(out) == 0 {
				return nil
			}
			nh, err := parseHeader(out)
			if err != nil {
				return err
			}
			if nh.control() {
				keptMarkers[nh.baseOffset] = true
			}
			st.m.add(st.base, &nh, interval)
			buf = append(buf, out...)
			if len(buf) >= scanWindow {
				return flush()
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for _, a := range cs.m.aborted {
			if keptMarkers[a.LastOffset] {
				st.m.aborted = append(st.m.aborted, a)
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if !changed {
		return nil, nil
	}
	st.m.addTimeEntry(st.base)
	if err := st.stage(); err != nil {
		return nil, err
	}
	ok = true
	return st, nil
}
