package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/txn"
)

// AddPartitionsToTxn v0-v5. v0-v3 are the client's: partitions join the
// producer's transaction (opening one), answered once durable in
// __transaction_state. v4+ is the broker-to-broker batched form (KIP-890
// part 1): with VerifyOnly it checks that partitions are in each
// transaction, without it adds them. Before v2 a fenced producer gets
// INVALID_PRODUCER_EPOCH, after it PRODUCER_FENCED.
//
// With an authorizer, as Kafka's: v0-v3 need WRITE on the transactional
// id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED on every partition) and on
// each topic (TOPIC_AUTHORIZATION_FAILED, the other partitions
// OPERATION_NOT_ATTEMPTED, and nothing is added); v4+ is the brokers' and
// needs CLUSTER_ACTION on the cluster (CLUSTER_AUTHORIZATION_FAILED).

func init() { register(24, 0, 5, handleAddPartitionsToTxn) }

func handleAddPartitionsToTxn(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.AddPartitionsToTxnRequest)
	if r.Version >= 4 && !c.allowedCluster(kmsg.ACLOperationClusterAction) {
		resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return respond(resp)
	}
	if r.Version < 4 {
		if resp := c.addPartitionsDenied(r); resp != nil {
			return respond(resp)
		}
	}
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
		if r.Version >= 4 {
			for _, rt := range r.Transactions {
				resp.Transactions = append(resp.Transactions, c.b.addPartitionsBatched(ctx, rt))
			}
			return resp
		}
		tps := make([]txn.TopicPartition, 0, len(r.Topics))
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				tps = append(tps, txn.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
		code, codes := c.b.txns.AddPartitions(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, txn.FencedCode(r.Version, 2), tps)
		for _, t := range r.Topics {
			st := kmsg.NewAddPartitionsToTxnResponseTopic()
			st.Topic = t.Topic
			for _, p := range t.Partitions {
				sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				sp.Partition = p
				sp.ErrorCode = code
				if codes != nil {
					sp.ErrorCode = codes[txn.TopicPartition{Topic: t.Topic, Partition: p}]
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}, nil
}

// addPartitionsBatched answers one transaction of a v4+ request.
func (b *Broker) addPartitionsBatched(ctx context.Context, rt kmsg.AddPartitionsToTxnRequestTransaction) kmsg.AddPartitionsToTxnResponseTransaction {
	st := kmsg.NewAddPartitionsToTxnResponseTransaction()
	st.TransactionalID = rt.TransactionalID
	for _, t := range rt.Topics {
		stt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
		stt.Topic = t.Topic
		for _, p := range t.Partitions {
			sp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
			sp.Partition = p
			err := b.txns.VerifyPartition(ctx, rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, t.Topic, p, !rt.VerifyOnly)
			if ke, ok := err.(*kerr.Error); ok {
				sp.ErrorCode = ke.Code
			} else if err != nil {
				sp.ErrorCode = kerr.UnknownServerError.Code
			}
			stt.Partitions = append(stt.Partitions, sp)
		}
		st.Topics = append(st.Topics, stt)
	}
	return st
}

// addPartitionsDenied answers a v0-v3 request the authorizer refuses in
// whole or in part, or returns nil to serve it.
func (c *conn) addPartitionsDenied(r *kmsg.AddPartitionsToTxnRequest) *kmsg.AddPartitionsToTxnResponse {
	if c.b.authz == nil {
		return nil
	}
	txnDenied := !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, r.TransactionalID)
	topicDenied := make(map[string]bool)
	for _, t := range r.Topics {
		if !txnDenied && !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, t.Topic) {
			topicDenied[t.Topic] = true
		}
	}
	if !txnDenied && len(topicDenied) == 0 {
		return nil
	}
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	for _, t := range r.Topics {
		st := kmsg.NewAddPartitionsToTxnResponseTopic()
		st.Topic = t.Topic
		code := kerr.OperationNotAttempted.Code
		switch {
		case txnDenied:
			code = kerr.TransactionalIDAuthorizationFailed.Code
		case topicDenied[t.Topic]:
			code = kerr.TopicAuthorizationFailed.Code
		}
		for _, p := range t.Partitions {
			sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			sp.Partition, sp.ErrorCode = p, code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
