package broker

import (
	"context"
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/runnel-dev/runnel/broker/internal/log"
	"github.com/runnel-dev/runnel/broker/internal/log/producer"
)

// The partition side of transactions: the contract the transaction
// coordinator (package broker/internal/txn, handlers 22-28, 65, 66) codes against.
//
// Producer state (epochs, the last five batches' sequence numbers, open
// transactions) lives in the partition's log (package broker/internal/log and its
// sub-package broker/internal/log/producer) and is checked and updated under the
// partition's append lock; the coordinator never touches it directly. It
// asks the partition three things:
//
//   - appendMarker writes the COMMIT or ABORT control batch that completes
//     a producer's transaction on the partition (Kafka's WriteTxnMarkers,
//     done in-process on one node) and returns once it is durable.
//   - hasOngoingTxn reports whether a producer has an open transaction on
//     the partition (for DescribeTransactions, and to decide which
//     partitions need a marker after a broker restart).
//   - lastStableOffset is the LSO that read_committed fetches stop at.
//
// And the partition asks the coordinator one thing, through txnVerifier:
// KIP-890. A transactional produce to a partition on which the producer
// has no open transaction would start one; before it is written, the
// produce handler asks the coordinator whether the partition belongs to
// the producer's current transaction (Produce v3-v11: verify only, KIP-890
// part 1) or to add it (Produce v12+: the client no longer sends
// AddPartitionsToTxn for data partitions, KIP-890 part 2). A marker written
// while the question is in flight cancels the answer (the verification
// guard below), so a late produce cannot open a transaction that the
// coordinator has already completed — the hanging transaction.
//
// Lock order: partition.appendMu, then the log's locks, then partition.mu.
// appendMarker takes appendMu; the coordinator must not call it while
// holding a lock that a produce can wait on.

// txnVerifier is the transaction coordinator's answer to "may this
// producer write transactional data to this partition?". The coordinator
// (package broker/internal/txn) implements it; until it is wired with
// partitions.setTxnVerifier every transactional produce is accepted.
type txnVerifier interface {
	// VerifyPartition returns nil when topic/partition is part of the
	// ongoing transaction of txnID with this producer id and epoch —
	// after adding it when add is true (Produce v12+) — and otherwise an
	// error that answers the produce: a *kerr.Error (INVALID_TXN_STATE,
	// PRODUCER_FENCED, INVALID_PRODUCER_EPOCH, CONCURRENT_TRANSACTIONS,
	// NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, ...) is sent as is,
	// any other error as UNKNOWN_SERVER_ERROR. It is called in the
	// connection's reader goroutine with no partition lock held, and may
	// block (to persist an added partition) until ctx is done.
	VerifyPartition(ctx context.Context, txnID string, producerID int64, producerEpoch int16, topic string, partition int32, add bool) error
}

// verifierHolder keeps the installed txnVerifier; the interface value is
// boxed so an atomic pointer can hold it.
type verifierHolder struct{ v txnVerifier }

// setTxnVerifier installs the coordinator's verifier (nil removes it).
// Call it once the coordinator is ready to answer, before or after
// clients connect.
func (ps *partitions) setTxnVerifier(v txnVerifier) {
	if v == nil {
		ps.verifier.Store(nil)
		return
	}
	ps.verifier.Store(&verifierHolder{v})
}

// txnVerifier returns the installed verifier or nil.
func (ps *partitions) txnVerifier() txnVerifier {
	if h := ps.verifier.Load(); h != nil {
		return h.v
	}
	return nil
}

// appendMarker writes m, a COMMIT or ABORT control batch for the
// producer's transaction on this partition (Kafka's WriteTxnMarkers, done
// in-process on one node), at the partition's leader epoch (m.LeaderEpoch
// is ignored), completes the transaction in the producer state (the LSO
// moves past it once the marker is durable; an abort is recorded in the
// aborted-transaction index with the LSO at that point), and returns the
// marker's offset once it is durable (it waits like an acks=all produce,
// until ctx is done).
//
// The marker is written even when the producer has no open transaction
// here (Kafka does the same: the coordinator may send a marker for a
// partition that was added but never written); it then completes nothing.
// m.ProducerEpoch must be at least the producer's epoch on the partition;
// a higher one (EndTxn v5 bumps the epoch, KIP-890 part 2) becomes the
// producer's epoch, and its next batch must start at sequence 0. A lower
// one fails with an error wrapping producer.ErrInvalidEpoch
// (INVALID_PRODUCER_EPOCH), and so does a transaction version 2 marker
// (m.TV2) whose epoch is not above that of the producer's open
// transaction: a delayed duplicate of the previous transaction's marker,
// which would otherwise complete the open one (producer.State.CheckMarker).
// A coordinatorEpoch lower than the one of the last marker for this
// producer fails with producer.ErrCoordinatorFenced
// (TRANSACTION_COORDINATOR_FENCED); txnErrorCode maps these. Marker writes
// also cancel any KIP-890 verification in flight for the producer.
//
// When ctx ends before the marker is durable the marker offset is
// returned with ctx's error: the marker is written and will become
// durable (or be lost with the log's tail in a crash, leaving the
// transaction open for the coordinator to complete again).
func (p *partition) appendMarker(ctx context.Context, m log.Marker) (int64, error) {
	p.appendMu.Lock()
	p.mu.Lock()
	m.LeaderEpoch = p.leaderEpoch
	leading := p.leading
	p.mu.Unlock()
	if !leading {
		p.appendMu.Unlock()
		return 0, errNotLeader
	}
	// The transaction stays unstable until its marker is below the high
	// watermark; record that before the log forgets it is open, so the
	// LSO never passes it early (lastStableOffset reads the log first).
	first, open := p.log.OngoingTxn(m.ProducerID)
	var entry completingTxn
	if open {
		entry = completingTxn{first: first, marker: p.log.EndOffset()}
		p.mu.Lock()
		p.completing = append(p.completing, entry)
		p.mu.Unlock()
	}
	res, _, err := p.log.AppendMarker(m)
	if err == nil {
		// A refused marker leaves the producer's state as it was, and
		// a verification in flight with it.
		delete(p.verifyGuards, m.ProducerID)
	}
	p.appendMu.Unlock()
	if err != nil {
		if open {
			p.mu.Lock()
			if i := slices.Index(p.completing, entry); i >= 0 {
				p.completing = slices.Delete(p.completing, i, i+1)
			}
			p.mu.Unlock()
		}
		return -1, err
	}
	p.nudge()
	if !p.waitHW(ctx, res.BaseOffset+1) {
		if err := ctx.Err(); err != nil {
			return res.BaseOffset, err
		}
		return res.BaseOffset, log.ErrClosed
	}
	return res.BaseOffset, nil
}

// completingTxn is a transaction whose marker is written but not yet
// below the high watermark.
type completingTxn struct{ first, marker int64 }

// hasOngoingTxn reports whether the producer has an open transaction on
// this partition: a transactional batch written and no marker after it.
func (p *partition) hasOngoingTxn(producerID int64) bool {
	_, ok := p.log.OngoingTxn(producerID)
	return ok
}

// lastStableOffset is the LSO: the first offset of the earliest
// transaction that is open, or whose marker is not yet below the high
// watermark; the high watermark when there is none. read_committed
// fetches and ListOffsets(latest, read_committed) stop here.
// Invariant: log start offset <= lastStableOffset <= high watermark.
func (p *partition) lastStableOffset() int64 {
	// The log's first unstable offset is read before completing: a marker
	// adds to completing before the log drops the transaction.
	unstable := p.log.FirstUnstableOffset()
	p.mu.Lock()
	lso := p.hw
	for _, t := range p.completing {
		lso = min(lso, t.first)
	}
	p.mu.Unlock()
	if unstable >= 0 {
		lso = min(lso, unstable)
	}
	// A transaction that began in a segment since deleted cannot hold
	// the LSO below the log start.
	return max(lso, p.log.StartOffset())
}

// txnCheck is what verifyTxn learned for an append: verify is set when a
// coordinator is installed (so a transactional batch may open a
// transaction only with a valid guard), and guard identifies the
// verification of producerID's transaction.
type txnCheck struct {
	verify     bool
	producerID int64
	guard      uint64
}

// verifyTxn runs the KIP-890 check for a transactional produce from
// producerID before it is appended: unless the producer has a transaction
// open here at producerEpoch, the coordinator must confirm (or, add true,
// add) the partition. The guard it records is dropped by a marker written
// in the meantime, which makes the append fail with INVALID_TXN_STATE
// rather than open a transaction the coordinator has already completed.
//
// A transaction open at another epoch is checked too, as Kafka's
// hasOngoingTransaction(producerId, producerEpoch) does: under
// transaction version 2 it is the previous transaction, whose marker (at
// the new epoch) has not arrived yet, and the coordinator answers
// CONCURRENT_TRANSACTIONS until it has. Appended unchecked, the new
// transaction's first batch would join the old one, and the old one's
// marker, no longer above the open transaction's epoch, would be refused.
func (p *partition) verifyTxn(ctx context.Context, v txnVerifier, txnID string, producerID int64, producerEpoch int16, add bool) (txnCheck, error) {
	tc := txnCheck{verify: true, producerID: producerID}
	if e, ok := p.log.ProducerEntry(producerID); ok && e.TxnFirstOffset >= 0 && e.Epoch == producerEpoch {
		return tc, nil
	}
	p.appendMu.Lock()
	p.guardSeq++
	tc.guard = p.guardSeq
	p.verifyGuards[producerID] = tc.guard
	p.appendMu.Unlock()
	if err := v.VerifyPartition(ctx, txnID, producerID, producerEpoch, p.topic, p.index, add); err != nil {
		p.appendMu.Lock()
		if p.verifyGuards[producerID] == tc.guard {
			delete(p.verifyGuards, producerID)
		}
		p.appendMu.Unlock()
		return txnCheck{}, err
	}
	return tc, nil
}

// txnErrorCode maps an error from an append or a marker to the Kafka error
// a client (or the coordinator) understands: producer-state errors, a
// *kerr.Error returned by the verifier, then errorCode's mapping.
func txnErrorCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case err == nil:
		return 0
	case errors.Is(err, producer.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, producer.ErrInvalidEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, producer.ErrInvalidTxnState):
		return kerr.InvalidTxnState.Code
	case errors.Is(err, producer.ErrCoordinatorFenced):
		return kerr.TransactionCoordinatorFenced.Code
	case errors.Is(err, log.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.As(err, &ke):
		return ke.Code
	}
	return errorCode(err)
}
