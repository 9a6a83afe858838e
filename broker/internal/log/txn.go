package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/log/producer"
)

// Producer state and transactions in the log: the checks on appends of
// batches with a producer id (append.go calls checkProducersLocked and
// applyProducersLocked), COMMIT/ABORT markers, the aborted-transaction
// index, and producer state snapshots.

const (
	txnIndexSuffix = ".txnindex"
	snapshotSuffix = ".snapshot"

	// txnEntrySize is one aborted-transaction index entry, as Kafka's:
	// version int16 (0), producer id int64, first offset int64, last
	// offset int64, last stable offset int64.
	txnEntrySize = 2 + 8 + 8 + 8 + 8

	// Control record types (the key's second int16).
	controlAbort  = 0
	controlCommit = 1
)

// AbortedTxn is an aborted-transaction index entry: producer ProducerID's
// transaction spanning FirstOffset to LastOffset (the ABORT marker) was
// aborted, and the LSO was LastStableOffset once it was.
type AbortedTxn struct {
	ProducerID       int64
	FirstOffset      int64
	LastOffset       int64
	LastStableOffset int64
}

// checkProducersLocked checks every batch with a producer id against the
// producer state and fills l.pbatches, one entry per batch, for
// writeLocked and applyProducersLocked. It returns the original batch
// when the append is a retry, an error when a check fails.
// REQUIRES: l.appendMu held.
func (l *Log) checkProducersLocked(batches []byte, o *AppendOptions) (producer.BatchMeta, bool, error) {
	l.pbatches = l.pbatches[:0]
	var (
		first      producer.BatchMeta
		dups, idem int
	)
	for p := int64(0); p < int64(len(batches)); {
		h, _ := parseHeader(batches[p:]) // checked by checkBatches
		p += h.size
		l.pbatches = append(l.pbatches, producer.Batch{
			ProducerID:    h.producerID,
			Epoch:         h.producerEpoch,
			FirstSeq:      h.baseSequence,
			LastSeq:       producer.LastSeqOf(h.baseSequence, h.records),
			Transactional: h.transactional(),
		})
		i := len(l.pbatches) - 1
		b := &l.pbatches[i]
		if b.ProducerID < 0 {
			continue
		}
		idem++
		var prev *producer.Batch
		for j := i - 1; j >= 0; j-- {
			if l.pbatches[j].ProducerID == b.ProducerID {
				prev = &l.pbatches[j]
				break
			}
		}
		orig, dup, err := l.producers.Check(b, prev)
		if err != nil {
			return producer.BatchMeta{}, false, err
		}
		if dup {
			if dups == 0 {
				first = orig
			}
			dups++
			continue
		}
		if o.VerifyTxnStart && b.ProducerID != o.VerifiedProducer && (prev == nil || !prev.Transactional) && l.producers.StartsTxn(b) {
			return producer.BatchMeta{}, false, fmt.Errorf("%w: producer %d has no verified transaction on this partition", producer.ErrInvalidTxnState, b.ProducerID)
		}
	}
	if dups > 0 {
		if dups != len(l.pbatches) {
			return producer.BatchMeta{}, false, fmt.Errorf("%w: an append may not mix retried batches with new ones", ErrInvalidRecord)
		}
		return first, true, nil
	}
	return producer.BatchMeta{}, false, nil
}

// applyProducersLocked records the batches of l.pbatches, now written,
// in the producer state.
// REQUIRES: l.appendMu held.
func (l *Log) applyProducersLocked() {
	for i := range l.pbatches {
		if l.pbatches[i].ProducerID >= 0 {
			l.producers.Apply(&l.pbatches[i])
		}
	}
	l.firstUnstable.Store(l.producers.FirstUnstableOffset())
}

// FirstUnstableOffset is the first offset of the earliest open
// transaction, -1 when none is open. It moves when a transactional batch
// opens a transaction (before the batch is visible to readers) and when a
// marker closes one.
func (l *Log) FirstUnstableOffset() int64 { return l.firstUnstable.Load() }

// OngoingTxn returns the first offset of the producer's open transaction.
func (l *Log) OngoingTxn(producerID int64) (int64, bool) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return l.producers.OngoingTxn(producerID)
}

// ProducerEntry returns a copy of the producer's state.
func (l *Log) ProducerEntry(producerID int64) (producer.Entry, bool) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	e := l.producers.Entry(producerID)
	if e == nil {
		return producer.Entry{}, false
	}
	return *e, true
}

// Producers returns a copy of every producer's state, by producer id.
func (l *Log) Producers() []producer.Entry {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return l.producers.Entries()
}

// ExpireProducers forgets producers idle for ttl or longer (by the time of
// their last batch or marker) that have no open transaction
// (producer.id.expiration.ms). It returns how many it forgot.
func (l *Log) ExpireProducers(now time.Time, ttl time.Duration) int {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return 0
	}
	return l.producers.Expire(now.UnixMilli(), ttl.Milliseconds())
}

// Marker is a COMMIT or ABORT marker to append.
type Marker struct {
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool
	CoordinatorEpoch int32
	LeaderEpoch      int32
	// TV2 is set for a marker of transaction.version 2 (see
	// producer.State.CheckMarker).
	TV2 bool
}

// AppendMarker writes the control batch that completes the producer's
// transaction and records it in the producer state; an abort goes in the
// aborted-transaction index of the segment the marker lands in. It fails
// with an error wrapping producer.ErrInvalidEpoch or
// producer.ErrCoordinatorFenced when the producer state refuses the
// marker. The returned transaction has FirstOffset -1 when the producer
// had none open.
func (l *Log) AppendMarker(m Marker) (AppendResult, producer.CompletedTxn, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return AppendResult{}, producer.CompletedTxn{}, ErrClosed
	}
	if err := l.broken(); err != nil {
		return AppendResult{}, producer.CompletedTxn{}, err
	}
	pm := producer.Marker{ProducerID: m.ProducerID, Epoch: m.ProducerEpoch, Commit: m.Commit, CoordinatorEpoch: m.CoordinatorEpoch, TV2: m.TV2}
	if err := l.producers.CheckMarker(&pm); err != nil {
		return AppendResult{}, producer.CompletedTxn{}, err
	}
	nowMs := l.now().UnixMilli()
	batch := encodeMarker(&pm, nowMs)
	res, err := l.writeLocked(batch, batchesInfo{records: 1}, l.cfg.Load(), m.LeaderEpoch)
	if err != nil {
		return res, producer.CompletedTxn{}, err
	}
	pm.Offset, pm.Timestamp = res.BaseOffset, nowMs
	done := l.producers.ApplyMarker(&pm)
	l.firstUnstable.Store(l.producers.FirstUnstableOffset())
	if !done.Commit && done.FirstOffset >= 0 {
		if err := l.addAbortedLocked(l.active, abortedOf(&done)); err != nil {
			return res, done, err
		}
	}
	return res, done, nil
}

func abortedOf(c *producer.CompletedTxn) AbortedTxn {
	return AbortedTxn{ProducerID: c.ProducerID, FirstOffset: c.FirstOffset, LastOffset: c.LastOffset, LastStableOffset: c.LastStableOffset}
}

// addAbortedLocked adds an entry to the active segment's
// aborted-transaction index, in memory and at the end of its file (not
// synced: the newest segment's index is rebuilt from the log after a
// crash, and a sealed segment's is rewritten and synced).
// REQUIRES: l.appendMu held.
func (l *Log) addAbortedLocked(s *segment, a AbortedTxn) error {
	s.w.aborted = append(s.w.aborted, a)
	l.mu.Lock()
	l.publishLocked(s)
	l.mu.Unlock()
	f, err := os.OpenFile(s.path(txnIndexSuffix), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return l.fail(fmt.Errorf("log: aborted transaction index: %w", err))
	}
	_, err = f.Write(appendTxnEntry(nil, a))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return l.fail(fmt.Errorf("log: aborted transaction index: %w", err))
	}
	return nil
}

// AbortedTxns returns the aborted transactions a read_committed fetch of
// offsets [from, to) must know of: those with records in that range
// (first offset below to, marker at or after from), in marker order.
func (l *Log) AbortedTxns(from, to int64) []AbortedTxn {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []AbortedTxn
	for _, s := range l.segments[l.segmentForLocked(from):] {
		for _, a := range s.pub.aborted {
			if a.LastOffset >= from && a.FirstOffset < to {
				out = append(out, a)
			}
			if a.LastStableOffset >= to {
				// Every later abort began at or after this LSO.
				return out
			}
		}
	}
	return out
}

func appendTxnEntry(dst []byte, a AbortedTxn) []byte {
	dst = binary.BigEndian.AppendUint16(dst, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(a.ProducerID))
	dst = binary.BigEndian.AppendUint64(dst, uint64(a.FirstOffset))
	dst = binary.BigEndian.AppendUint64(dst, uint64(a.LastOffset))
	return binary.BigEndian.AppendUint64(dst, uint64(a.LastStableOffset))
}

func encodeTxnIndex(entries []AbortedTxn) []byte {
	b := make([]byte, 0, len(entries)*txnEntrySize)
	for _, a := range entries {
		b = appendTxnEntry(b, a)
	}
	return b
}

// decodeTxnIndex parses a segment's aborted-transaction index; every
// marker offset must lie in [base, limit), in order.
func decodeTxnIndex(b []byte, base, limit int64) ([]AbortedTxn, error) {
	if len(b)%txnEntrySize != 0 {
		return nil, fmt.Errorf("aborted transaction index of %d bytes", len(b))
	}
	out := make([]AbortedTxn, 0, len(b)/txnEntrySize)
	prev := base - 1
	for ; len(b) > 0; b = b[txnEntrySize:] {
		if v := binary.BigEndian.Uint16(b); v != 0 {
			return nil, fmt.Errorf("aborted transaction index entry version %d", v)
		}
		a := AbortedTxn{
			ProducerID:       int64(binary.BigEndian.Uint64(b[2:])),
			FirstOffset:      int64(binary.BigEndian.Uint64(b[10:])),
			LastOffset:       int64(binary.BigEndian.Uint64(b[18:])),
			LastStableOffset: int64(binary.BigEndian.Uint64(b[26:])),
		}
		if a.ProducerID < 0 || a.FirstOffset < 0 || a.FirstOffset >= a.LastOffset || a.LastOffset <= prev || a.LastOffset >= limit || a.LastStableOffset < 0 {
			return nil, fmt.Errorf("bad aborted transaction index entry %+v", a)
		}
		prev = a.LastOffset
		out = append(out, a)
	}
	return out, nil
}

// encodeMarker builds a control batch of one record: key (version int16
// 0, type int16 0 abort / 1 commit), value (version int16 0, coordinator
// epoch int32), as Kafka's EndTransactionMarker.
func encodeMarker(m *producer.Marker, nowMs int64) []byte {
	typ := int16(controlAbort)
	if m.Commit {
		typ = controlCommit
	}
	// The record: attributes, timestamp delta 0, offset delta 0, key,
	// value, no headers; varints are zigzag.
	rec := []byte{0, 0, 0, 4 << 1, 0, 0, 0, 0, 6 << 1, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(rec[6:], uint16(typ))
	binary.BigEndian.PutUint32(rec[11:], uint32(m.CoordinatorEpoch))
	b := make([]byte, batchHeaderSize, batchHeaderSize+1+len(rec))
	b = append(b, byte(len(rec)<<1))
	b = append(b, rec...)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-logOverhead))
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], attrTransactional|attrControl)
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(nowMs))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(nowMs))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(m.ProducerID))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(m.Epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], 0xffffffff)
	binary.BigEndian.PutUint32(b[offRecordCount:], 1)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// errBadControl reports a control batch whose record cannot be read.
var errBadControl = errors.New("log: unreadable control record")

// decodeMarker reads the marker type and coordinator epoch from a whole
// control batch. It returns errBadControl for anything it cannot read,
// including compressed records and control types other than COMMIT and
// ABORT.
func decodeMarker(batch []byte) (commit bool, coordinatorEpoch int32, err error) {
	if len(batch) <= batchHeaderSize || batch[offAttributes+1]&attrCompression != 0 {
		return false, 0, errBadControl
	}
	r := batch[batchHeaderSize:]
	varint := func() (int64, bool) {
		v, n := binary.Varint(r)
		if n <= 0 {
			return 0, false
		}
		r = r[n:]
		return v, true
	}
	if _, ok := varint(); !ok { // record length
		return false, 0, errBadControl
	}
	if len(r) < 1 {
		return false, 0, errBadControl
	}
	r = r[1:]                   // attributes
	if _, ok := varint(); !ok { // timestamp delta
		return false, 0, errBadControl
	}
	if _, ok := varint(); !ok { // offset delta
		return false, 0, errBadControl
	}
	klen, ok := varint()
	if !ok || klen < 4 || klen > int64(len(r)) {
		return false, 0, errBadControl
	}
	key := r[:klen]
	r = r[klen:]
	var typ int16
	switch int16(binary.BigEndian.Uint16(key[2:])) {
	case controlAbort:
		typ = controlAbort
	case controlCommit:
		typ = controlCommit
	default:
		return false, 0, errBadControl
	}
	vlen, ok := varint()
	if ok && vlen >= 6 && vlen <= int64(len(r)) {
		coordinatorEpoch = int32(binary.BigEndian.Uint32(r[2:]))
	}
	return typ == controlCommit, coordinatorEpoch, nil
}

// snapshotName is the file holding the producer state as of offset.
func snapshotName(offset int64) string { return segmentName(offset) + snapshotSuffix }

// parseSnapshotName returns the offset of a file named like a snapshot.
func parseSnapshotName(name string) (int64, bool) {
	if len(name) != baseDigits+len(snapshotSuffix) || filepath.Ext(name) != snapshotSuffix {
		return 0, false
	}
	n, err := strconv.ParseInt(name[:baseDigits], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	for _, c := range name[:baseDigits] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	return n, true
}

// snapshotOffsets lists the snapshot files in the log directory, oldest
// first.
func (l *Log) snapshotOffsets() []int64 {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil
	}
	var offs []int64
	for _, e := range entries {
		if off, ok := parseSnapshotName(e.Name()); ok && e.Type().IsRegular() {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	return offs
}

// writeSnapshotLocked writes the producer state as of the log end offset.
// A snapshot only saves replay work on open, so failing to write one is
// logged, not fatal.
// REQUIRES: l.appendMu held.
func (l *Log) writeSnapshotLocked() {
	off := l.end.Load()
	if err := writeFileAtomic(filepath.Join(l.dir, snapshotName(off)), l.producers.AppendSnapshot(nil)); err != nil {
		l.logger.Warn("write producer state snapshot", "dir", l.dir, "offset", off, "err", err)
	}
}

// removeSnapshots deletes the snapshots at offsets for which drop is true.
func (l *Log) removeSnapshots(drop func(off int64) bool) {
	for _, off := range l.snapshotOffsets() {
		if drop(off) {
			if err := os.Remove(filepath.Join(l.dir, snapshotName(off))); err != nil && !os.IsNotExist(err) {
				l.logger.Warn("remove producer state snapshot", "dir", l.dir, "offset", off, "err", err)
			}
		}
	}
}

// readSnapshot loads the snapshot at off.
func (l *Log) readSnapshot(off int64) (*producer.State, error) {
	raw, err := os.ReadFile(filepath.Join(l.dir, snapshotName(off)))
	if err != nil {
		return nil, err
	}
	return producer.DecodeSnapshot(raw, off)
}

// loadProducers builds the producer state and the aborted-transaction
// indexes that recovery could not trust (needTxn: segments whose
// .txnindex was missing or bad, and the newest segment unless the log was
// closed cleanly). After a clean close the snapshot at the log end is the
// state. Otherwise the newest snapshot at or before the first segment in
// needTxn is loaded (or the state starts empty at the first segment) and
// the log is replayed from there, batch headers only, rebuilding the
// indexes of the segments in needTxn on the way.
// REQUIRES: called by recover, before the log is shared.
func (l *Log) loadProducers(needTxn map[*segment]bool, newestTrusted bool) error {
	end := newestEnd(l.segments)
	l.removeSnapshots(func(off int64) bool { return off > end })
	offs := l.snapshotOffsets()
	if newestTrusted && len(needTxn) == 0 && len(offs) > 0 && offs[len(offs)-1] == end {
		if st, err := l.readSnapshot(end); err == nil {
			l.producers = st
			l.firstUnstable.Store(st.FirstUnstableOffset())
			return nil
		} else {
			l.logger.Warn("ignoring producer state snapshot", "dir", l.dir, "offset", end, "err", err)
		}
	}
	newest := l.segments[len(l.segments)-1]
	needTxn[newest] = true
	bound := end
	for s := range needTxn {
		bound = min(bound, s.base)
	}
	first := l.segments[0].base
	st, from := producer.New(), first
	for i := len(offs) - 1; i >= 0; i-- {
		off := offs[i]
		if off > bound || off < first {
			continue
		}
		s, err := l.readSnapshot(off)
		if err != nil {
			l.logger.Warn("ignoring producer state snapshot", "dir", l.dir, "offset", off, "err", err)
			continue
		}
		st, from = s, off
		break
	}
	l.producers = st
	if err := l.replay(from, needTxn); err != nil {
		return err
	}
	for s := range needTxn {
		if s == newest && len(s.w.aborted) == 0 {
			os.Remove(s.path(txnIndexSuffix))
			continue
		}
		if err := writeFileAtomic(s.path(txnIndexSuffix), encodeTxnIndex(s.w.aborted)); err != nil {
			return fmt.Errorf("log: write aborted transaction index: %w", err)
		}
	}
	l.firstUnstable.Store(st.FirstUnstableOffset())
	return nil
}

func newestEnd(segs []*segment) int64 { return segs[len(segs)-1].w.next }

// replay applies the batches at and after offset from to the producer
// state, rebuilding the aborted-transaction index of the segments in
// rebuild (all of which start at or after from).
func (l *Log) replay(from int64, rebuild map[*segment]bool) error {
	i := 0
	for i < len(l.segments)-1 && l.segments[i+1].base <= from {
		i++
	}
	for _, s := range l.segments[i:] {
		rb := rebuild[s]
		if rb {
			s.w.aborted = nil
		}
		sc := newScanner(s.f, 0, s.w.size)
		for {
			h, pos, err := sc.next()
			if err != nil {
				if err == io.EOF {
					break
				}
				return fmt.Errorf("log: replay producer state, segment %d: %w", s.base, err)
			}
			if h.lastOffset() < from || h.producerID < 0 {
				continue
			}
			if !h.control() {
				l.producers.Apply(&producer.Batch{
					ProducerID:    h.producerID,
					Epoch:         h.producerEpoch,
					FirstSeq:      h.baseSequence,
					LastSeq:       producer.LastSeqOf(h.baseSequence, h.lastOffsetDelta+1), // a cleaned batch keeps its span, not its records
					FirstOffset:   h.baseOffset,
					LastOffset:    h.lastOffset(),
					Timestamp:     h.maxTimestamp,
					Transactional: h.transactional(),
				})
				continue
			}
			b, err := sc.batch(pos, &h)
			if err != nil {
				return fmt.Errorf("log: replay producer state, segment %d: %w", s.base, err)
			}
			commit, coordEpoch, err := decodeMarker(b)
			if err != nil {
				l.logger.Warn("skipping unreadable control batch", "dir", l.dir, "offset", h.baseOffset)
				continue
			}
			done := l.producers.ApplyMarker(&producer.Marker{
				ProducerID:       h.producerID,
				Epoch:            h.producerEpoch,
				Commit:           commit,
				CoordinatorEpoch: coordEpoch,
				Offset:           h.baseOffset,
				Timestamp:        h.maxTimestamp,
			})
			if rb && !commit && done.FirstOffset >= 0 {
				s.w.aborted = append(s.w.aborted, abortedOf(&done))
			}
		}
	}
	return nil
}

// writeFileAtomic replaces path with data so that a crash leaves either
// the old file or the new one: temp file, fsync, rename.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, data); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
