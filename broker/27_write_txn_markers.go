package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/group"
	"github.com/runnel-dev/runnel/broker/internal/txn"
)

// WriteTxnMarkers v0-v2: a transaction coordinator on another broker
// writes the COMMIT or ABORT markers of a transaction on the partitions
// this broker leads (txn_markers.go). Each marker is written through the
// partition's producer state and answered once durable (below the high
// watermark), as the coordinator's own in-process writes are; on
// __consumer_offsets the group coordinator writes it and applies or drops
// the transaction's offsets. v2's transaction version 2 marks a marker
// whose epoch was bumped by EndTxn v5 (KIP-890 part 2).
//
// Errors per partition: NOT_LEADER_OR_FOLLOWER where this broker does
// not lead, COORDINATOR_LOAD_IN_PROGRESS while the group coordinator
// loads the __consumer_offsets partition, UNKNOWN_TOPIC_OR_PARTITION,
// and the producer-state refusals (INVALID_PRODUCER_EPOCH,
// TRANSACTION_COORDINATOR_FENCED). The coordinator retries the failed
// ones.
//
// With an authorizer it needs CLUSTER_ACTION on the cluster, as Kafka's:
// every partition answers CLUSTER_AUTHORIZATION_FAILED otherwise.

func init() { register(27, 0, 2, handleWriteTxnMarkers) }

func handleWriteTxnMarkers(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.WriteTxnMarkersRequest)
	denied := !c.allowedCluster(kmsg.ACLOperationClusterAction)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
		for _, rm := range r.Markers {
			sm := kmsg.NewWriteTxnMarkersResponseMarker()
			sm.ProducerID = rm.ProducerID
			for _, rt := range rm.Topics {
				st := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
				st.Topic = rt.Topic
				for _, idx := range rt.Partitions {
					sp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
					sp.Partition = idx
					if denied {
						sp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
						st.Partitions = append(st.Partitions, sp)
						continue
					}
					sp.ErrorCode = c.b.writeMarkerHere(ctx, txn.Marker{
						TopicPartition: txn.TopicPartition{Topic: rt.Topic, Partition: idx},
						ProducerID:     rm.ProducerID, ProducerEpoch: rm.ProducerEpoch, Commit: rm.Committed,
						CoordinatorEpoch: rm.CoordinatorEpoch, TV2: rm.TransactionVersion >= 2,
					})
					st.Partitions = append(st.Partitions, sp)
				}
				sm.Topics = append(sm.Topics, st)
			}
			resp.Markers = append(resp.Markers, sm)
		}
		return resp
	}, nil
}

// writeMarkerHere writes one marker a remote coordinator asked for and
// returns the partition's error code.
func (b *Broker) writeMarkerHere(ctx context.Context, m txn.Marker) int16 {
	if !b.partitionExists(m.Topic, m.Partition) {
		return kerr.UnknownTopicOrPartition.Code
	}
	p := b.parts.get(m.Topic, m.Partition)
	if p == nil || !p.isLeader() {
		return kerr.NotLeaderForPartition.Code
	}
	err := b.writeTxnMarkerLocal(ctx, m)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, group.ErrNotLoaded):
		if p.isLeader() {
			return kerr.CoordinatorLoadInProgress.Code
		}
		return kerr.NotLeaderForPartition.Code
	case ctx.Err() != nil:
		return kerr.RequestTimedOut.Code
	}
	code := txnErrorCode(err)
	if code == kerr.UnknownServerError.Code {
		b.logger.Error("write transaction marker", "topic", m.Topic, "partition", m.Partition, "producer_id", m.ProducerID, "err", err)
	}
	return code
}
