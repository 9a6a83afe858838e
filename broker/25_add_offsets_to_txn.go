package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/group"
	"github.com/runnel-dev/runnel/broker/internal/txn"
)

// AddOffsetsToTxn v0-v4: the group's __consumer_offsets partition joins
// the producer's transaction, so the commit or abort marker reaches the
// offsets TxnOffsetCommit writes there.

func init() { register(25, 0, 4, handleAddOffsetsToTxn) }

func handleAddOffsetsToTxn(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.AddOffsetsToTxnRequest)
	// As Kafka's: WRITE on the transactional id, then READ on the group.
	if !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, r.TransactionalID) {
		resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return respond(resp)
	}
	if !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, r.Group) {
		resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return respond(resp)
	}
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
		tp := txn.TopicPartition{Topic: offsetsTopic, Partition: group.PartitionFor(r.Group, c.b.groups.Partitions())}
		code, codes := c.b.txns.AddPartitions(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, txn.FencedCode(r.Version, 2), []txn.TopicPartition{tp})
		if code == 0 && codes != nil {
			code = codes[tp]
		}
		resp.ErrorCode = code
		return resp
	}, nil
}
