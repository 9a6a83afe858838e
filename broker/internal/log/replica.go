package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/runnel-dev/runnel/broker/internal/log/producer"
)

// A follower's log. A follower copies its leader's batches as they are
// — offsets, leader epochs, producer fields and control batches included —
// with AppendReplica, and before it fetches at a new leader epoch cuts its
// log back to where it agrees with the leader's (TruncateDir, on a closed
// log: the partition reopens it, and recovery rebuilds the indexes, the
// producer state and the epoch history from what is left).

// ErrReplicaOffset is returned by AppendReplica when the batches do not
// start at or after the log end: the follower and the leader disagree on
// where the log ends, and the follower must truncate first.
var ErrReplicaOffset = errors.New("log: replicated batches do not follow the log end")

// AppendReplica writes batches fetched from the leader at the offsets
// they carry, keeping their leader epochs (which extend the epoch
// history), and applies them to the producer state as recovery replays
// them, so a follower that becomes leader knows every producer's
// sequence numbers and open transactions. Batches must be whole, valid
// (CRC) and ascending, the first at or after the log end. It returns the
// new log end offset.
func (l *Log) AppendReplica(batches []byte) (int64, error) {
	if err := checkReplicaBatches(batches); err != nil {
		return 0, err
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return 0, ErrClosed
	}
	if err := l.broken(); err != nil {
		return 0, err
	}
	cfg := l.cfg.Load()
	interval := int64(cfg.IndexIntervalBytes)
	// The batches are written in runs, one write per run of batches
	// going to one segment, and published after it: a direct write
	// (direct.go) waits for the disk, once per run rather than per batch.
	// A run ends at a roll, at a new leader epoch (which starts at the
	// published log end), at a control batch (its aborted-transaction
	// index entry is written after the marker, as on the leader), at an
	// error, and at the end.
	r := replicaRun{l: l, direct: l.direct.Load()}
	next := l.end.Load()
	for p := int64(0); p < int64(len(batches)); {
		b := batches[p:]
		h, _ := parseHeader(b) // checked by checkBatches
		if h.baseOffset < next {
			return r.end(fmt.Errorf("%w: batch at %d, log end %d", ErrReplicaOffset, h.baseOffset, next))
		}
		nowMs := l.now().UnixMilli()
		s := l.active
		if l.shouldRoll(s, cfg, h.size, int64(h.records), nowMs) || h.lastOffset()-s.base > math.MaxInt32 {
			if err := r.write(); err != nil {
				return l.end.Load(), err
			}
			if err := l.rollLocked(); err != nil {
				return l.end.Load(), err
			}
			s = l.active
		}
		if n := len(l.epochs); h.leaderEpoch >= 0 && (n == 0 || l.epochs[n-1].Epoch < h.leaderEpoch) {
			// A new epoch starts at the log end: what is pending first.
			if err := r.write(); err != nil {
				return l.end.Load(), err
			}
			if err := l.assignEpochLocked(h.leaderEpoch); err != nil {
				return l.end.Load(), err
			}
		}
		pos := s.w.size
		m := s.w
		m.add(s.base, &h, interval)
		r.add(s, pos, b[:h.size], h.lastOffset()+1)
		if pos == 0 {
			s.rollBase = nowMs
		}
		s.modTime = nowMs
		s.w = m
		p += h.size
		next = h.lastOffset() + 1
		if h.control() {
			if err := r.write(); err != nil {
				return l.end.Load(), err
			}
		}
		if err := l.applyReplicaProducerLocked(s, &h, b[:h.size]); err != nil {
			return r.end(err)
		}
	}
	if err := r.write(); err != nil {
		return l.end.Load(), err
	}
	end := l.end.Load()
	if cfg.FlushMessages > 1 && end-l.flushed.Load() >= cfg.FlushMessages {
		l.wake()
	}
	return end, nil
}

// replicaRun is AppendReplica's batches not yet written: contiguous in
// the fetched bytes and in one segment, already in its working metadata.
type replicaRun struct {
	l      *Log
	direct bool
	s      *segment
	pos    int64  // where buf goes in s
	buf    []byte // the batches
	next   int64  // the offset after the last
}

// add appends batch, going to s at pos, to the run.
func (r *replicaRun) add(s *segment, pos int64, batch []byte, next int64) {
	if len(r.buf) == 0 {
		r.s, r.pos, r.buf = s, pos, batch
	} else {
		r.buf = r.buf[:len(r.buf)+len(batch)] // batch follows buf in the fetched bytes
	}
	r.next = next
}

// write writes the run and publishes it. A failed write breaks the log.
func (r *replicaRun) write() error {
	if len(r.buf) == 0 {
		return nil
	}
	l := r.l
	if err := r.s.writeAt(r.buf, r.pos, r.direct); err != nil {
		return l.fail(err)
	}
	l.mu.Lock()
	l.publishLocked(r.s)
	l.end.Store(r.next)
	l.size.Add(int64(len(r.buf)))
	l.mu.Unlock()
	r.buf = nil
	return nil
}

// end writes what the run holds (it is in the segment's metadata
// already) and returns err with the log end.
func (r *replicaRun) end(err error) (int64, error) {
	if werr := r.write(); werr != nil {
		return r.l.end.Load(), werr
	}
	return r.l.end.Load(), err
}

// checkReplicaBatches validates what a leader sent: whole batches, magic
// 2, intact (CRC), offsets ascending. It does not apply a producer's
// rules (control batches carry no sequence; a compacted batch may hold
// fewer records than its offset span): the leader checked those.
func checkReplicaBatches(in []byte) error {
	if len(in) == 0 {
		return fmt.Errorf("%w: no batches", ErrCorrupt)
	}
	next := int64(-1)
	for p := 0; p < len(in); {
		b := in[p:]
		if len(b) < batchHeaderSize {
			return fmt.Errorf("%w: %d trailing bytes after %d", ErrCorrupt, len(b), p)
		}
		h, err := parseHeader(b)
		if err != nil {
			return err
		}
		if h.size > int64(len(b)) {
			return fmt.Errorf("%w: batch at %d claims %d bytes, %d remain", ErrCorrupt, p, h.size, len(b))
		}
		if !crcOK(b[:h.size]) {
			return fmt.Errorf("%w: CRC mismatch in batch at %d", ErrCorrupt, p)
		}
		if h.baseOffset < next {
			return fmt.Errorf("%w: batch offsets go back from %d to %d", ErrCorrupt, next, h.baseOffset)
		}
		next = h.lastOffset() + 1
		p += int(h.size)
	}
	return nil
}

// applyReplicaProducerLocked records a replicated batch in the producer
// state, and an aborting marker in the aborted-transaction index.
// REQUIRES: l.appendMu held.
func (l *Log) applyReplicaProducerLocked(s *segment, h *batchHeader, batch []byte) error {
	if h.producerID < 0 {
		return nil
	}
	defer func() { l.firstUnstable.Store(l.producers.FirstUnstableOffset()) }()
	if !h.control() {
		l.producers.Apply(&producer.Batch{
			ProducerID:    h.producerID,
			Epoch:         h.producerEpoch,
			FirstSeq:      h.baseSequence,
			LastSeq:       producer.LastSeqOf(h.baseSequence, h.lastOffsetDelta+1),
			FirstOffset:   h.baseOffset,
			LastOffset:    h.lastOffset(),
			Timestamp:     h.maxTimestamp,
			Transactional: h.transactional(),
		})
		return nil
	}
	commit, coordEpoch, err := decodeMarker(batch)
	if err != nil {
		l.logger.Warn("replicated control batch unreadable; not applied", "dir", l.dir, "offset", h.baseOffset)
		return nil
	}
	done := l.producers.ApplyMarker(&producer.Marker{
		ProducerID:       h.producerID,
		Epoch:            h.producerEpoch,
		Commit:           commit,
		CoordinatorEpoch: coordEpoch,
		Offset:           h.baseOffset,
		Timestamp:        h.maxTimestamp,
	})
	if !done.Commit && done.FirstOffset >= 0 {
		return l.addAbortedLocked(s, abortedOf(&done))
	}
	return nil
}

// TruncateDir cuts the closed log in dir back so that it ends at or
// before offset: segments starting at or after offset are deleted, and
// the one holding offset is cut at the start of the batch that contains
// it (a batch is never split, so the log may end a little before offset).
// The aborted-transaction index of the cut segment loses the markers
// past the cut, and producer state snapshots past it are deleted; Open
// rebuilds the rest (indexes, producer state, epoch history). Truncating
// at or past the log end changes nothing. The log must not be open.
func TruncateDir(dir string, offset int64) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("log: truncate: %w", err)
	}
	var bases []int64
	for _, e := range entries {
		if base, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	if len(bases) == 0 {
		return nil
	}
	keep := 0 // segments [0, keep) survive
	for keep < len(bases) && (bases[keep] < offset || keep == 0) {
		keep++
	}
	for _, base := range bases[keep:] {
		s := &segment{dir: dir, base: base}
		if err := s.remove(); err != nil {
			return fmt.Errorf("log: truncate: %w", err)
		}
	}
	last := &segment{dir: dir, base: bases[keep-1]}
	f, err := os.OpenFile(last.path(logSuffix), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("log: truncate: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("log: truncate: %w", err)
	}
	cut := fi.Size()
	sc := newScanner(f, 0, fi.Size())
	for {
		h, pos, err := sc.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			// A torn or corrupt tail (or direct-write padding):
			// recovery cuts there anyway.
			cut = sc.pos
			break
		}
		if h.lastOffset() >= offset {
			cut = pos
			break
		}
	}
	if cut < fi.Size() {
		if err := f.Truncate(cut); err != nil {
			return fmt.Errorf("log: truncate: %w", err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("log: truncate: %w", err)
		}
	}
	// The cut segment is now the newest: recovery rescans it, but trusts
	// its aborted-transaction index if well formed, so drop what the cut
	// removed.
	if raw, err := os.ReadFile(last.path(txnIndexSuffix)); err == nil {
		if txns, err := decodeTxnIndex(raw, last.base, math.MaxInt64); err == nil {
			txns = slices.DeleteFunc(txns, func(a AbortedTxn) bool { return a.LastOffset >= offset })
			if err := writeFileAtomic(last.path(txnIndexSuffix), encodeTxnIndex(txns)); err != nil {
				return fmt.Errorf("log: truncate: %w", err)
			}
		} else {
			os.Remove(last.path(txnIndexSuffix))
		}
	}
	for _, e := range entries {
		if off, ok := parseSnapshotName(e.Name()); ok && off > offset {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("log: truncate: %w", err)
			}
		}
	}
	return syncDir(dir)
}

// ResetDir empties the closed log in dir and makes it start, empty, at
// offset: what a follower does when the leader no longer has the records
// after its log end (retention or DeleteRecords moved the leader's log
// start past it), so it can only copy from the leader's log start on.
// Every segment, index, producer state snapshot and the epoch history go;
// Open finds an empty log at offset. The log must not be open.
func ResetDir(dir string, offset int64) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("log: reset: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if base, ok := parseSegmentName(name); ok {
			if err := (&segment{dir: dir, base: base}).remove(); err != nil {
				return fmt.Errorf("log: reset: %w", err)
			}
			continue
		}
		if _, ok := parseSnapshotName(name); ok || name == epochFile || name == cleanerCheckpointFile {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("log: reset: %w", err)
			}
		}
	}
	return (&Log{dir: dir}).writeStartOffset(offset)
}
