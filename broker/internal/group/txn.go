package group

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
)

// Transactional offset commits (TxnOffsetCommit). A producer's offsets
// are written to __consumer_offsets in a transactional batch carrying its
// producer id and epoch, and held per producer, invisible to OffsetFetch,
// until the transaction coordinator completes the transaction: CompleteTxn
// writes the COMMIT or ABORT marker to the same partition and applies or
// drops them. Replaying the partition does the same from the batches and
// markers, so a restart neither loses committed nor exposes aborted
// offsets; offsets whose marker never came stay pending until the
// transaction coordinator, finishing the transaction, sends it.

// pendingOffsets are one producer's uncommitted offsets: group, then
// partition.
type pendingOffsets map[string]map[topicPartition]offset

// complete applies (commit) or drops the offsets.
func (p pendingOffsets) complete(commit bool, offsets map[string]map[topicPartition]offset) {
	if !commit {
		return
	}
	for g, offs := range p {
		if offsets[g] == nil {
			offsets[g] = make(map[topicPartition]offset)
		}
		for tp, o := range offs {
			offsets[g][tp] = o
		}
	}
}

// TxnOffsetCommit handles a TxnOffsetCommit request; the transaction
// coordinator has already checked the producer's id and epoch and that
// the group's partition is in its transaction. From v3 a member's
// generation and member id are checked as an OffsetCommit's are (KIP-447),
// so a zombie of an earlier generation cannot commit; a generation of -1
// with no member id commits for a group that only stores offsets. The
// returned function waits until the write is durable.
func (c *Coordinator) TxnOffsetCommit(req *kmsg.TxnOffsetCommitRequest) func(context.Context) *kmsg.TxnOffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	resp.Topics = make([]kmsg.TxnOffsetCommitResponseTopic, len(req.Topics))
	var parts []partitionCommit
	for ti, rt := range req.Topics {
		st := &resp.Topics[ti]
		st.Default()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.TxnOffsetCommitResponseTopicPartition, len(rt.Partitions))
		for pi, rp := range rt.Partitions {
			sp := &st.Partitions[pi]
			sp.Default()
			sp.Partition = rp.Partition
			epoch := int32(-1) // leader epochs came with v2
			if req.Version >= 2 {
				epoch = rp.LeaderEpoch
			}
			parts = append(parts, partitionCommit{rt.Topic, rp.Partition, rp.Offset, epoch, rp.Metadata, &sp.ErrorCode})
		}
	}
	checkMember := req.Version >= 3 && (req.Generation >= 0 || req.MemberID != "")
	done := c.commitOffsets(offsetCommit{
		group: req.Group,
		parts: parts,
		admit: func(s *shard, g *group) (*group, int16) {
			if g == nil {
				if checkMember {
					return nil, kerr.IllegalGeneration.Code
				}
				g = s.newGroupLocked(req.Group)
			}
			if checkMember {
				return g, g.validateCommitLocked(req.Generation, req.MemberID, req.InstanceID)
			}
			if g.state == Dead {
				return nil, kerr.CoordinatorNotAvailable.Code
			}
			return g, 0
		},
		write: func(s *shard, recs []recordbatch.Record) (func(context.Context) error, error) {
			if len(recs) == 0 {
				return nil, nil
			}
			// A transactional batch of the producer, with no sequence
			// (-1), as Kafka's coordinator writes it; the partition
			// numbers it.
			return s.AppendLocked(recs, attrTransactional, recordbatch.Producer{ID: req.ProducerID, Epoch: req.ProducerEpoch, Sequence: -1})
		},
		apply: func(s *shard, g *group, tp topicPartition, o offset) {
			p := s.pending[req.ProducerID]
			if p == nil {
				p = make(pendingOffsets)
				s.pending[req.ProducerID] = p
			}
			if p[g.id] == nil {
				p[g.id] = make(map[topicPartition]offset)
			}
			p[g.id][tp] = o
		},
	})
	return func(ctx context.Context) *kmsg.TxnOffsetCommitResponse {
		done(ctx)
		return resp
	}
}

// TxnMarker is a COMMIT or ABORT marker that ends a producer's
// transaction on a __consumer_offsets partition.
type TxnMarker struct {
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool
	CoordinatorEpoch int32
	// TV2 is set for a marker of transaction.version 2 (EndTxn v5,
	// KIP-890 part 2): the coordinator bumped its epoch past the one the
	// transaction's offsets were written at, and a MarkerPartition
	// refuses it when it is not above the epoch of the producer's open
	// transaction — a delayed marker of the transaction before.
	TV2 bool
}

// MarkerPartition is a Partition that writes transaction markers itself:
// the broker's partitions keep producer state, which a marker must go
// through. To other partitions the marker is appended as a control batch.
type MarkerPartition interface {
	// AppendMarker writes the COMMIT or ABORT marker and returns once it
	// is durable, or an error if the producer state refuses it.
	AppendMarker(ctx context.Context, m TxnMarker) error
}

// ErrNotLoaded is returned by CompleteTxn while the partition is loading
// or led elsewhere; the transaction coordinator retries.
var ErrNotLoaded = errors.New("group: __consumer_offsets partition not loaded here")

// CompleteTxn ends a producer's transaction on one __consumer_offsets
// partition: it writes the COMMIT or ABORT marker and applies (commit) or
// drops the producer's pending offsets there. It returns once the marker
// is durable. A marker for a producer with nothing pending is written
// all the same, as Kafka does; a marker the partition refuses (a stale
// epoch) changes nothing, and its error is returned.
func (c *Coordinator) CompleteTxn(ctx context.Context, partition int32, m TxnMarker) error {
	cs, code := c.rt.Lookup(partition)
	if code != 0 {
		return fmt.Errorf("%w: partition %d", ErrNotLoaded, partition)
	}
	s := cs.State()
	var wait func(context.Context) error
	if mp, ok := s.Partition().(MarkerPartition); ok {
		// The marker first, durable, then the offsets it commits. No
		// other write of this producer comes in between: its
		// transaction coordinator holds the next transaction until
		// this one completes.
		s.Unlock()
		if err := mp.AppendMarker(ctx, m); err != nil {
			return fmt.Errorf("group: write transaction marker: %w", err)
		}
		wait = func(context.Context) error { return nil }
		s.Lock()
		if !s.ServingLocked() {
			// Unloaded meanwhile: the next load replays the marker.
			s.Unlock()
			return nil
		}
	} else {
		var err error
		recs := []recordbatch.Record{markerRecord(m.Commit, m.CoordinatorEpoch)}
		if wait, err = s.AppendLocked(recs, attrTransactional|attrControl, recordbatch.Producer{ID: m.ProducerID, Epoch: m.ProducerEpoch, Sequence: -1}); err != nil {
			s.Unlock()
			return fmt.Errorf("group: write transaction marker: %w", err)
		}
	}
	if p := s.pending[m.ProducerID]; p != nil {
		delete(s.pending, m.ProducerID)
		if m.Commit {
			for id, offs := range p {
				g := s.groups[id]
				if g == nil || g.state == Dead {
					g = s.newGroupLocked(id)
				}
				for tp, o := range offs {
					g.offsets[tp] = o
				}
			}
		}
	}
	s.Unlock()
	return wait(ctx)
}
