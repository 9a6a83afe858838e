// Package producer holds one partition's producer state: for every
// producer id that wrote to the partition, its epoch, the sequence numbers
// and offsets of its last five batches (so a retried batch is recognised
// and answered with its original offsets) and its open transaction, if
// any. It is a state machine with no IO and no locks: package log drives
// it under its append lock, persists it in snapshot files (see
// snapshot.go) and rebuilds it from the log tail on open.
//
// The rules follow Kafka's (ProducerStateManager):
//
//   - A batch with an epoch below the producer's is rejected
//     (ErrInvalidEpoch: INVALID_PRODUCER_EPOCH). A higher epoch replaces
//     the producer's and must start at sequence 0.
//   - With the same epoch, a batch whose first and last sequence equal one
//     of the last five batches' is a duplicate; otherwise its first
//     sequence must follow the last one (wrapping from MaxInt32 to 0), or
//     it is rejected (ErrOutOfOrderSequence). A producer new to the
//     partition must start at sequence 0.
//   - A transactional batch opens a transaction at its first offset unless
//     one is open; a non-transactional batch from a producer with an open
//     transaction is rejected (ErrInvalidTxnState). A marker (written by
//     the transaction coordinator) closes it.
package producer

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Sentinel errors; the ones returned wrap these.
var (
	// ErrOutOfOrderSequence: the batch's sequence does not follow the
	// producer's last one (OUT_OF_ORDER_SEQUENCE_NUMBER).
	ErrOutOfOrderSequence = errors.New("producer: out of order sequence number")
	// ErrInvalidEpoch: the batch or marker carries an epoch older than
	// the producer's (INVALID_PRODUCER_EPOCH).
	ErrInvalidEpoch = errors.New("producer: stale producer epoch")
	// ErrInvalidTxnState: a non-transactional batch from a producer with
	// an open transaction (INVALID_TXN_STATE).
	ErrInvalidTxnState = errors.New("producer: invalid transaction state")
	// ErrCoordinatorFenced: a marker from a coordinator epoch older than
	// the last one seen for the producer (TRANSACTION_COORDINATOR_FENCED).
	ErrCoordinatorFenced = errors.New("producer: transaction coordinator fenced")
	// ErrCorruptSnapshot: a snapshot that fails to decode.
	ErrCorruptSnapshot = errors.New("producer: corrupt snapshot")
)

// MaxBatches is how many of a producer's last batches are remembered for
// duplicate detection: a producer has at most five requests in flight per
// partition (max.in.flight.requests.per.connection), so a retry is always
// of one of them.
const MaxBatches = 5

// Batch is what the state needs to know of a data batch.
type Batch struct {
	ProducerID    int64
	Epoch         int16
	FirstSeq      int32
	LastSeq       int32 // FirstSeq + records - 1, wrapping past MaxInt32
	FirstOffset   int64
	LastOffset    int64
	Timestamp     int64 // ms: the append time (or the batch's max timestamp when replayed)
	Transactional bool
}

// BatchMeta is a remembered batch.
type BatchMeta struct {
	FirstSeq, LastSeq       int32
	FirstOffset, LastOffset int64
}

// Entry is one producer's state.
type Entry struct {
	ProducerID int64
	Epoch      int16
	// CoordinatorEpoch is the coordinator epoch of the last marker, -1
	// before any.
	CoordinatorEpoch int32
	// LastTimestamp is the time of the last batch or marker, in ms: the
	// producer expires producer.id.expiration.ms after it.
	LastTimestamp int64
	// TxnFirstOffset is the first offset of the open transaction, -1 when
	// none is open.
	TxnFirstOffset int64

	// batches is a ring of the last n batches, oldest at head.
	batches [MaxBatches]BatchMeta
	head, n uint8
}

// Batches returns the remembered batches, oldest first.
func (e *Entry) Batches() []BatchMeta {
	out := make([]BatchMeta, e.n)
	for i := range out {
		out[i] = e.batches[(int(e.head)+i)%MaxBatches]
	}
	return out
}

// LastSeq is the last sequence written at the current epoch, -1 when none
// (a producer whose epoch a marker bumped has written nothing at it yet).
func (e *Entry) LastSeq() int32 { return e.lastSeq() }

// lastSeq is the last sequence written at the current epoch, -1 when none.
func (e *Entry) lastSeq() int32 {
	if e.n == 0 {
		return -1
	}
	return e.batches[(int(e.head)+int(e.n)-1)%MaxBatches].LastSeq
}

func (e *Entry) addBatch(m BatchMeta) {
	if e.n < MaxBatches {
		e.batches[(int(e.head)+int(e.n))%MaxBatches] = m
		e.n++
		return
	}
	e.batches[e.head] = m
	e.head = (e.head + 1) % MaxBatches
}

func (e *Entry) resetBatches() { e.head, e.n = 0, 0 }

// findDuplicate returns the remembered batch with the same sequence range.
func (e *Entry) findDuplicate(firstSeq, lastSeq int32) (BatchMeta, bool) {
	for i := 0; i < int(e.n); i++ {
		m := e.batches[(int(e.head)+i)%MaxBatches]
		if m.FirstSeq == firstSeq && m.LastSeq == lastSeq {
			return m, true
		}
	}
	return BatchMeta{}, false
}

// NextSeq returns the sequence that follows seq: sequences wrap from
// MaxInt32 to 0.
func NextSeq(seq int32) int32 {
	if seq == math.MaxInt32 {
		return 0
	}
	return seq + 1
}

// LastSeqOf is the last sequence of a batch of records records starting at
// firstSeq, wrapping past MaxInt32.
func LastSeqOf(firstSeq int32, records int32) int32 {
	return int32((int64(firstSeq) + int64(records) - 1) % (math.MaxInt32 + 1))
}

// State is one partition's producer state. It is not safe for concurrent
// use; the log drives it under its append lock.
type State struct {
	producers map[int64]*Entry
	// ongoing maps producer ids with an open transaction to its first
	// offset; firstUnstable caches the smallest, -1 when none.
	ongoing       map[int64]int64
	firstUnstable int64
}

// New returns an empty state.
func New() *State {
	return &State{producers: make(map[int64]*Entry), ongoing: make(map[int64]int64), firstUnstable: -1}
}

// Len is the number of producers held.
func (s *State) Len() int { return len(s.producers) }

// Entry returns the producer's entry, or nil. The entry belongs to the
// state: do not keep it past the next change.
func (s *State) Entry(producerID int64) *Entry { return s.producers[producerID] }

// Entries returns a copy of every producer's entry, by producer id.
func (s *State) Entries() []Entry {
	out := make([]Entry, 0, len(s.producers))
	for _, e := range s.producers {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}

// FirstUnstableOffset is the first offset of the earliest open
// transaction, -1 when none is open.
func (s *State) FirstUnstableOffset() int64 { return s.firstUnstable }

// OngoingTxn returns the first offset of the producer's open transaction.
func (s *State) OngoingTxn(producerID int64) (int64, bool) {
	off, ok := s.ongoing[producerID]
	return off, ok
}

// OngoingTxns calls fn for every open transaction.
func (s *State) OngoingTxns(fn func(producerID, firstOffset int64)) {
	for pid, off := range s.ongoing {
		fn(pid, off)
	}
}

// Check decides what to do with b, a batch about to be appended, given
// prev: the batch before it from the same producer in the same append,
// or nil. It returns the original batch when b is a retry of one already
// written (dup true), or an error wrapping ErrInvalidEpoch,
// ErrOutOfOrderSequence or ErrInvalidTxnState. It changes nothing.
func (s *State) Check(b *Batch, prev *Batch) (orig BatchMeta, dup bool, err error) {
	e := s.producers[b.ProducerID]
	epoch, lastSeq, inTxn := int16(-1), int32(-1), false
	if e != nil {
		epoch, lastSeq, inTxn = e.Epoch, e.lastSeq(), e.TxnFirstOffset >= 0
	}
	if prev != nil {
		// An earlier batch of this append moved the producer on.
		if prev.Epoch > epoch {
			lastSeq = -1
		}
		epoch, lastSeq = max(epoch, prev.Epoch), prev.LastSeq
		inTxn = inTxn || prev.Transactional
	}
	switch {
	case b.Epoch < epoch:
		return BatchMeta{}, false, fmt.Errorf("%w: producer %d epoch %d, current epoch %d", ErrInvalidEpoch, b.ProducerID, b.Epoch, epoch)
	case b.Epoch > epoch:
		if b.FirstSeq != 0 {
			return BatchMeta{}, false, fmt.Errorf("%w: producer %d new epoch %d must start at sequence 0, got %d", ErrOutOfOrderSequence, b.ProducerID, b.Epoch, b.FirstSeq)
		}
	default:
		if e != nil && prev == nil {
			if m, ok := e.findDuplicate(b.FirstSeq, b.LastSeq); ok {
				return m, true, nil
			}
		}
		if b.FirstSeq != NextSeq(lastSeq) {
			return BatchMeta{}, false, fmt.Errorf("%w: producer %d epoch %d sequence %d, expected %d", ErrOutOfOrderSequence, b.ProducerID, b.Epoch, b.FirstSeq, NextSeq(lastSeq))
		}
	}
	if inTxn && !b.Transactional {
		return BatchMeta{}, false, fmt.Errorf("%w: non-transactional batch from producer %d, which has an open transaction", ErrInvalidTxnState, b.ProducerID)
	}
	return BatchMeta{}, false, nil
}

// StartsTxn reports whether b, checked and about to be appended, would
// open a transaction (it is transactional and its producer has none open).
func (s *State) StartsTxn(b *Batch) bool {
	if !b.Transactional {
		return false
	}
	_, open := s.ongoing[b.ProducerID]
	return !open
}

// Apply records b, a batch written at b.FirstOffset..b.LastOffset. It
// does not check it (the log checked it with Check first, and batches
// replayed from the log are applied as they are).
func (s *State) Apply(b *Batch) {
	e := s.entry(b.ProducerID)
	if b.Epoch != e.Epoch {
		e.Epoch = b.Epoch
		e.resetBatches()
	}
	e.addBatch(BatchMeta{FirstSeq: b.FirstSeq, LastSeq: b.LastSeq, FirstOffset: b.FirstOffset, LastOffset: b.LastOffset})
	e.LastTimestamp = max(e.LastTimestamp, b.Timestamp)
	if b.Transactional && e.TxnFirstOffset < 0 {
		e.TxnFirstOffset = b.FirstOffset
		s.ongoing[b.ProducerID] = b.FirstOffset
		if s.firstUnstable < 0 || b.FirstOffset < s.firstUnstable {
			s.firstUnstable = b.FirstOffset
		}
	}
}

func (s *State) entry(pid int64) *Entry {
	e := s.producers[pid]
	if e == nil {
		e = &Entry{ProducerID: pid, Epoch: -1, CoordinatorEpoch: -1, LastTimestamp: math.MinInt64, TxnFirstOffset: -1}
		s.producers[pid] = e
	}
	return e
}

// Marker is a COMMIT or ABORT control batch.
type Marker struct {
	ProducerID       int64
	Epoch            int16
	Commit           bool
	CoordinatorEpoch int32
	// TV2 marks a marker of transaction.version 2 (EndTxn v5, KIP-890
	// part 2), whose epoch the coordinator bumped past the one the
	// transaction's data was written at. It is not stored in the log.
	TV2       bool
	Offset    int64 // the marker's offset
	Timestamp int64
}

// CompletedTxn is the transaction a marker completed.
type CompletedTxn struct {
	ProducerID int64
	// FirstOffset is the transaction's first offset, -1 when the producer
	// had no open transaction (the marker completed nothing).
	FirstOffset int64
	// LastOffset is the marker's offset.
	LastOffset int64
	Commit     bool
	// LastStableOffset is the LSO once this transaction is complete: the
	// first offset of the earliest transaction still open, or the offset
	// after the marker. It goes in the aborted-transaction index.
	LastStableOffset int64
}

// CheckMarker reports whether m may be written: its epoch is not below the
// producer's — and, for a TV2 marker while the producer has a transaction
// open, above it — and its coordinator epoch not below the last marker's.
// It changes nothing.
//
// The TV2 rule is Kafka 4's defence against a delayed marker: transaction
// N's markers carry epoch e+1, the epoch transaction N+1's data is then
// written at, so a duplicate of N's marker arriving while N+1 is open
// would otherwise complete N+1. Kafka refuses any TV2 marker at or below
// the producer's epoch; here one with no transaction open is accepted
// and completes nothing, because the coordinator re-sends the markers of
// a transaction it finds prepared after a restart and retries a marker
// until it is accepted.
func (s *State) CheckMarker(m *Marker) error {
	e := s.producers[m.ProducerID]
	if e == nil {
		return nil
	}
	switch {
	case m.Epoch < e.Epoch:
		return fmt.Errorf("%w: marker for producer %d at epoch %d, current epoch %d", ErrInvalidEpoch, m.ProducerID, m.Epoch, e.Epoch)
	case m.TV2 && e.TxnFirstOffset >= 0 && m.Epoch <= e.Epoch:
		return fmt.Errorf("%w: transaction version 2 marker for producer %d at epoch %d, not above its open transaction's epoch %d", ErrInvalidEpoch, m.ProducerID, m.Epoch, e.Epoch)
	}
	if m.CoordinatorEpoch < e.CoordinatorEpoch {
		return fmt.Errorf("%w: marker for producer %d from coordinator epoch %d, last was %d", ErrCoordinatorFenced, m.ProducerID, m.CoordinatorEpoch, e.CoordinatorEpoch)
	}
	return nil
}

// ApplyMarker records m, written at m.Offset, and returns the transaction
// it completed. A marker at a higher epoch (EndTxn v5 bumps the epoch,
// KIP-890 part 2) makes it the producer's epoch, whose first batch must
// then start at sequence 0.
func (s *State) ApplyMarker(m *Marker) CompletedTxn {
	e := s.entry(m.ProducerID)
	if m.Epoch != e.Epoch {
		e.Epoch = m.Epoch
		e.resetBatches()
	}
	e.CoordinatorEpoch = max(e.CoordinatorEpoch, m.CoordinatorEpoch)
	e.LastTimestamp = max(e.LastTimestamp, m.Timestamp)
	c := CompletedTxn{ProducerID: m.ProducerID, FirstOffset: e.TxnFirstOffset, LastOffset: m.Offset, Commit: m.Commit}
	if e.TxnFirstOffset >= 0 {
		first := e.TxnFirstOffset
		e.TxnFirstOffset = -1
		delete(s.ongoing, m.ProducerID)
		if first == s.firstUnstable {
			s.recomputeFirstUnstable()
		}
	}
	c.LastStableOffset = m.Offset + 1
	if s.firstUnstable >= 0 && s.firstUnstable < c.LastStableOffset {
		c.LastStableOffset = s.firstUnstable
	}
	return c
}

func (s *State) recomputeFirstUnstable() {
	s.firstUnstable = -1
	for _, off := range s.ongoing {
		if s.firstUnstable < 0 || off < s.firstUnstable {
			s.firstUnstable = off
		}
	}
}

// Expire removes producers idle (by LastTimestamp) for at least ttl ms as
// of nowMs, except those with an open transaction, and returns how many
// it removed.
func (s *State) Expire(nowMs, ttlMs int64) int {
	n := 0
	for pid, e := range s.producers {
		if e.TxnFirstOffset < 0 && e.LastTimestamp <= nowMs-ttlMs {
			delete(s.producers, pid)
			n++
		}
	}
	return n
}
