package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/log"
	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// Produce v3-v13 (RecordBatch v2 only; v13 names topics by id). Batches are
// validated (CRC32C, lengths, max.message.bytes) and appended as sent, in
// the connection's reader goroutine so pipelined requests keep their order;
// the response waits in the writer goroutine: for acks=all until the high
// watermark covers the appended batches (every ISR member has them, fsynced
// unless the topic relaxes flush.messages), for acks=1 until the leader's own
// log has them (see partition_replication.go). Only the leader takes writes
// (NOT_LEADER_OR_FOLLOWER elsewhere); acks=all fails with NOT_ENOUGH_REPLICAS
// before the append when the ISR is below min.insync.replicas, and with
// NOT_ENOUGH_REPLICAS_AFTER_APPEND when it shrank below it meanwhile. On one
// node acks=1 and acks=all mean the same; acks=0 gets no response, and a
// failed acks=0 produce closes the connection as Kafka does so the client
// refreshes metadata.
//
// Idempotent and transactional batches are checked against the
// partition's producer state under its append lock (see package
// broker/internal/log/producer): a retried batch is answered with its original
// offsets and not written again; a sequence gap gets
// OUT_OF_ORDER_SEQUENCE_NUMBER, a stale epoch INVALID_PRODUCER_EPOCH, a
// non-transactional batch from a producer inside a transaction
// INVALID_TXN_STATE, a control batch INVALID_RECORD. A transactional batch
// that would open a transaction on the partition is first verified with
// the transaction coordinator (KIP-890; from v12 the coordinator adds the
// partition itself), see partition_txn.go. Transactional batches without
// a transactional id get TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as
// Kafka's.

func init() { register(0, 3, 13, handleProduce) }

type produceWait struct {
	p   *partition
	end int64 // high watermark that acknowledges the append
	rp  *kmsg.ProduceResponseTopicPartition
}

func handleProduce(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	b := c.b
	badAcks := r.Acks != 0 && r.Acks != 1 && r.Acks != -1
	var cl *meta.Cluster
	if r.Version >= 13 {
		cl = b.meta.Cluster()
	}

	var waits []produceWait
	failed := false
	for _, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		name := rt.Topic
		if r.Version >= 13 {
			name = ""
			if t := cl.TopicsByID[rt.TopicID]; t != nil {
				name = t.Name
			}
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			code := int16(0)
			var end int64
			var p *partition
			switch {
			case badAcks:
				code = kerr.InvalidRequiredAcks.Code
			case b.internalTopic(name):
				// The coordinators own these logs; a client write
				// would corrupt their state.
				code = kerr.InvalidTopicException.Code
				msg := "cannot append to internal topic " + name
				sp.ErrorMessage = &msg
			default:
				if p, code = b.leaderPartition(name, rp.Partition); code == 0 {
					code = p.produceCheck(r.Acks)
				}
			}
			if code == 0 && len(rp.Records) == 0 {
				code = kerr.CorruptMessage.Code
			}
			var tc txnCheck
			if code == 0 {
				if pid, epoch, txnl := log.PeekProducer(rp.Records); txnl {
					if r.TransactionID == nil {
						code = kerr.TransactionalIDAuthorizationFailed.Code
					} else if v := b.parts.txnVerifier(); v != nil {
						var err error
						if tc, err = p.verifyTxn(c.ctx, v, *r.TransactionID, pid, epoch, r.Version >= 12); err != nil {
							code = txnErrorCode(err)
							sp.ErrorMessage = errorMessage(err)
						}
					}
				}
			}
			if code == 0 {
				res, err := p.appendChecked(rp.Records, tc)
				if err != nil {
					code = txnErrorCode(err)
					if code == kerr.UnknownServerError.Code {
						b.logger.Error("append", "topic", name, "partition", rp.Partition, "err", err)
					}
					sp.ErrorMessage = errorMessage(err)
				} else {
					sp.BaseOffset = res.BaseOffset
					sp.LogAppendTime = res.LogAppendTime
					sp.LogStartOffset = res.LogStartOffset
					end = res.LastOffset + 1
					if !res.Duplicate {
						b.metrics.bytesIn.WithLabelValues(name).Add(float64(len(rp.Records)))
						b.metrics.recordsIn.WithLabelValues(name).Add(float64(res.Records))
					}
				}
			}
			if code != 0 {
				failed = true
				b.metrics.produceErrors.WithLabelValues(kerr.ErrorForCode(code).(*kerr.Error).Message).Inc()
			}
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
			if code == 0 {
				waits = append(waits, produceWait{p: p, end: end})
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	if r.Acks == 0 {
		if failed {
			return nil, errCloseConn
		}
		return nil, nil
	}
	// Point each wait at its response entry now that the response slices
	// no longer grow.
	i := 0
	for ti := range resp.Topics {
		for pi := range resp.Topics[ti].Partitions {
			sp := &resp.Topics[ti].Partitions[pi]
			if sp.ErrorCode != 0 {
				continue
			}
			waits[i].rp = sp
			i++
		}
	}
	return func(ctx context.Context) kmsg.Response {
		timeout := time.Duration(r.TimeoutMillis) * time.Millisecond
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		for _, w := range waits {
			if code := w.p.waitAcked(wctx, w.end, r.Acks); code != 0 {
				w.rp.ErrorCode = code
				w.rp.BaseOffset = -1
			}
		}
		return resp
	}, nil
}
