package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/group"
	"github.com/runnel-dev/runnel/broker/internal/txn"
)

// TxnOffsetCommit v0-v5: a transactional producer commits a group's
// offsets inside its transaction. The transaction coordinator first
// checks the producer id and epoch (a fenced producer gets
// PRODUCER_FENCED, INVALID_PRODUCER_EPOCH before v3) and that the group's
// __consumer_offsets partition is in the transaction, adding it from v5
// (KIP-890 part 2, no AddOffsetsToTxn). The group coordinator then checks
// the member's generation and id (v3+, KIP-447) and holds the offsets
// until the transaction's marker.

func init() { register(28, 0, 5, handleTxnOffsetCommit) }

func handleTxnOffsetCommit(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.TxnOffsetCommitRequest)
	if resp := c.txnOffsetCommitDenied(r); resp != nil {
		return respond(resp)
	}
	return func(ctx context.Context) kmsg.Response {
		idx := group.PartitionFor(r.Group, c.b.groups.Partitions())
		err := c.b.verifyTxnPartition(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, offsetsTopic, idx, r.Version >= 5)
		if err != nil {
			code := kerr.UnknownServerError.Code
			if ke, ok := err.(*kerr.Error); ok {
				code = ke.Code
			}
			if code == kerr.InvalidProducerEpoch.Code {
				code = txn.FencedCode(r.Version, 3)
			}
			resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
			for _, rt := range r.Topics {
				st := kmsg.NewTxnOffsetCommitResponseTopic()
				st.Topic = rt.Topic
				for _, rp := range rt.Partitions {
					sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
					sp.Partition = rp.Partition
					sp.ErrorCode = code
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
			return resp
		}
		return c.b.groups.TxnOffsetCommit(r)(ctx)
	}, nil
}

// txnOffsetCommitDenied answers a request the authorizer refuses, as
// Kafka's: WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the group
// (GROUP_AUTHORIZATION_FAILED), READ on each topic
// (TOPIC_AUTHORIZATION_FAILED; nothing is committed then, the others
// answer OPERATION_NOT_ATTEMPTED, so the transaction holds all or none).
// It returns nil to serve the request.
func (c *conn) txnOffsetCommitDenied(r *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	if c.b.authz == nil {
		return nil
	}
	whole := int16(0)
	switch {
	case !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, r.TransactionalID):
		whole = kerr.TransactionalIDAuthorizationFailed.Code
	case !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, r.Group):
		whole = kerr.GroupAuthorizationFailed.Code
	}
	topicDenied := make(map[string]bool)
	if whole == 0 {
		for _, t := range r.Topics {
			if !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, t.Topic) {
				topicDenied[t.Topic] = true
			}
		}
		if len(topicDenied) == 0 {
			return nil
		}
	}
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		code := whole
		if code == 0 {
			code = kerr.OperationNotAttempted.Code
			if topicDenied[rt.Topic] {
				code = kerr.TopicAuthorizationFailed.Code
			}
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
