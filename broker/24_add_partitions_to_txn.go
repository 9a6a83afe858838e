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

func init() { register(24, 0, 5, handleAddPartitionsToTxn) }

func handleAddPartitionsToTxn(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.AddPartitionsToTxnRequest)
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
