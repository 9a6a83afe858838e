package broker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/log"
	"github.com/runnel-dev/runnel/broker/internal/meta"
	"github.com/runnel-dev/runnel/broker/internal/txn"
)

// Produce v3-v13 (RecordBatch v2 only; v13 names topics by id). Batches are
// validated (CRC32C, lengths, a known compression codec, max.message.bytes
// before and after decompression, and every record walked: the declared
// count, offset deltas, nothing after; see package broker/internal/log)
// and appended as sent, in
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
//
// With an authorizer, a request with a transactional id needs WRITE on
// it (TRANSACTIONAL_ID_AUTHORIZATION_FAILED on every partition), and each
// topic WRITE (TOPIC_AUTHORIZATION_FAILED), checked before the topic's
// existence so a denied principal learns nothing of it.

func init() { register(0, 3, 13, handleProduce) }

type produceWait struct {
	p   *partition
	end int64 // high watermark that acknowledges the append
	rp  *kmsg.ProduceResponseTopicPartition
}

func handleProduce(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.ProduceRequest)
	pr := &produceRun{c: c, b: c.b, r: r, resp: r.ResponseKind().(*kmsg.ProduceResponse)}
	if r.Version >= 13 {
		pr.cl = c.b.meta.Cluster()
	}
	if r.TransactionID != nil && !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, *r.TransactionID) {
		pr.denied = kerr.TransactionalIDAuthorizationFailed.Code
	}
	if r.Version >= 12 && r.TransactionID != nil && pr.denied == 0 {
		pr.addTxnPartitions()
	}
	for _, rt := range r.Topics {
		pr.resp.Topics = append(pr.resp.Topics, pr.topic(rt))
	}
	if r.Acks == 0 {
		if pr.failed {
			return nil, errCloseConn
		}
		return nil, nil
	}
	return pr.finisher(), nil
}

// produceRun is one Produce request being served.
type produceRun struct {
	c    *conn
	b    *Broker
	r    *kmsg.ProduceRequest
	resp *kmsg.ProduceResponse
	cl   *meta.Cluster // for topic ids (v13+)

	failed bool // some partition failed
	// denied refuses every partition of the request, or of the topic
	// being served, when the authorizer does (0 when it does not).
	denied      int16
	topicDenied int16
	waits       []produceWait // one per appended partition, in response order
}

// addTxnPartitions adds the partitions of a transactional produce (v12+,
// where the coordinator adds them) that would open the producer's
// transaction here to it in one coordinator write, when this broker
// coordinates the transactional id. Each partition's own verification
// (verify) then finds its partition added and writes nothing; without this
// each would wait in turn for a write of its own to be durable, and a
// transaction's first produce, which carries every partition it writes,
// would take one fsync of __transaction_state per partition. The
// verifications still decide: an error here is left to them.
func (pr *produceRun) addTxnPartitions() {
	if pr.b.parts.txnVerifier() == nil || pr.b.txns == nil {
		return
	}
	var tps []txn.TopicPartition
	pid, epoch := int64(-1), int16(-1)
	for _, rt := range pr.r.Topics {
		name := rt.Topic
		if pr.r.Version >= 13 {
			name = ""
			if t := pr.cl.TopicsByID[rt.TopicID]; t != nil {
				name = t.Name
			}
		}
		if name == "" || pr.b.internalTopic(name) || !pr.c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, name) {
			continue
		}
		for _, rp := range rt.Partitions {
			id, e, txnl := log.PeekProducer(rp.Records)
			if !txnl {
				continue
			}
			if pid >= 0 && (id != pid || e != epoch) {
				return // not one producer's: each partition verifies alone
			}
			pid, epoch = id, e
			p, code := pr.b.leaderPartition(name, rp.Partition)
			if code != 0 {
				continue
			}
			if pe, ok := p.log.ProducerEntry(id); ok && pe.TxnFirstOffset >= 0 && pe.Epoch == e {
				continue // open here: no verification
			}
			tps = append(tps, txn.TopicPartition{Topic: name, Partition: rp.Partition})
		}
	}
	if len(tps) < 2 {
		return // one partition's verification is one write anyway
	}
	pr.b.txns.AddPartitions(pr.c.ctx, *pr.r.TransactionID, pid, epoch, kerr.InvalidProducerEpoch.Code, tps)
}

// topic appends a topic's batches and returns its response entry.
func (pr *produceRun) topic(rt kmsg.ProduceRequestTopic) kmsg.ProduceResponseTopic {
	st := kmsg.NewProduceResponseTopic()
	st.Topic = rt.Topic
	st.TopicID = rt.TopicID
	name := rt.Topic
	if pr.r.Version >= 13 {
		name = ""
		if t := pr.cl.TopicsByID[rt.TopicID]; t != nil {
			name = t.Name
		}
	}
	pr.topicDenied = pr.denied
	if pr.topicDenied == 0 && name != "" && !pr.c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, name) {
		pr.topicDenied = kerr.TopicAuthorizationFailed.Code
	}
	n := len(rt.Partitions)
	sps := make([]kmsg.ProduceResponseTopicPartition, n)
	waits := make([]produceWait, n)
	appendOne := func(i int) {
		rp := rt.Partitions[i]
		sp := &sps[i]
		*sp = kmsg.NewProduceResponseTopicPartition()
		sp.Partition = rp.Partition
		sp.BaseOffset = -1
		sp.LogAppendTime = -1
		sp.LogStartOffset = -1
		waits[i].p, waits[i].end = pr.partition(name, rp, sp)
	}
	if !pr.b.cfg.DisableDirectWrites && n > 1 && distinctPartitions(rt.Partitions) {
		appendConcurrently(n, appendOne)
	} else {
		for i := range n {
			appendOne(i)
		}
	}
	for i := range sps {
		if sp := &sps[i]; sp.ErrorCode != 0 {
			pr.failed = true
			pr.b.metrics.produceErrors.WithLabelValues(kerr.ErrorForCode(sp.ErrorCode).(*kerr.Error).Message).Inc()
		} else {
			pr.waits = append(pr.waits, waits[i])
		}
	}
	st.Partitions = sps
	return st
}

// appendConcurrently runs appendOne(i) for each of n partitions, up to
// maxConcurrentAppends at once, this goroutine among them. With direct
// writes an append waits for the disk (direct.go), so a request's
// partitions wait together rather than one after another. A panic in one
// is raised again here, where the connection's handler recovers it.
func appendConcurrently(n int, appendOne func(int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var panicked any
	work := func() {
		defer func() {
			if r := recover(); r != nil {
				mu.Lock()
				panicked = r
				mu.Unlock()
			}
		}()
		for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
			appendOne(i)
		}
	}
	for range min(n, maxConcurrentAppends) - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
}

// maxConcurrentAppends bounds the appends of one request run at once.
const maxConcurrentAppends = 8

// distinctPartitions reports whether no partition is named twice: only
// then may their appends run in any order.
func distinctPartitions(ps []kmsg.ProduceRequestTopicPartition) bool {
	seen := make(map[int32]struct{}, len(ps))
	for _, p := range ps {
		if _, dup := seen[p.Partition]; dup {
			return false
		}
		seen[p.Partition] = struct{}{}
	}
	return true
}

// partition validates and appends one partition's batches, filling sp.
// It returns the partition and the high watermark that acknowledges the
// append when sp has no error.
func (pr *produceRun) partition(name string, rp kmsg.ProduceRequestTopicPartition, sp *kmsg.ProduceResponseTopicPartition) (*partition, int64) {
	p, code, msg := pr.target(name, rp)
	if code != 0 {
		sp.ErrorCode, sp.ErrorMessage = code, msg
		return nil, 0
	}
	tc, err := pr.verify(p, rp.Records)
	if err != nil {
		sp.ErrorCode, sp.ErrorMessage = txnErrorCode(err), errorMessage(err)
		return nil, 0
	}
	res, err := p.appendChecked(rp.Records, tc)
	if err != nil {
		sp.ErrorCode, sp.ErrorMessage = txnErrorCode(err), errorMessage(err)
		if sp.ErrorCode == kerr.UnknownServerError.Code {
			pr.b.logger.Error("append", "topic", name, "partition", rp.Partition, "err", err)
		}
		return nil, 0
	}
	sp.BaseOffset = res.BaseOffset
	sp.LogAppendTime = res.LogAppendTime
	sp.LogStartOffset = res.LogStartOffset
	if !res.Duplicate {
		pr.b.metrics.bytesIn.WithLabelValues(name).Add(float64(len(rp.Records)))
		pr.b.metrics.recordsIn.WithLabelValues(name).Add(float64(res.Records))
	}
	return p, res.LastOffset + 1
}

// target resolves the partition a produce may write, or the error code
// (and message) that refuses it before its batches are looked at.
func (pr *produceRun) target(name string, rp kmsg.ProduceRequestTopicPartition) (*partition, int16, *string) {
	switch acks := pr.r.Acks; {
	case acks != 0 && acks != 1 && acks != -1:
		return nil, kerr.InvalidRequiredAcks.Code, nil
	case pr.topicDenied != 0:
		return nil, pr.topicDenied, nil
	case pr.b.internalTopic(name):
		// The coordinators own these logs; a client write would
		// corrupt their state.
		msg := "cannot append to internal topic " + name
		return nil, kerr.InvalidTopicException.Code, &msg
	}
	p, code := pr.b.leaderPartition(name, rp.Partition)
	if code == 0 {
		code = p.produceCheck(pr.r.Acks)
	}
	switch {
	case code != 0:
		return nil, code, nil
	case len(rp.Records) == 0:
		return nil, kerr.CorruptMessage.Code, nil
	}
	return p, 0, nil
}

// verify checks a transactional append with the transaction coordinator
// before it may open a transaction on p (KIP-890), and refuses one sent
// without a transactional id.
func (pr *produceRun) verify(p *partition, records []byte) (txnCheck, error) {
	pid, epoch, txnl := log.PeekProducer(records)
	if !txnl {
		return txnCheck{}, nil
	}
	if pr.r.TransactionID == nil {
		return txnCheck{}, kerr.TransactionalIDAuthorizationFailed
	}
	v := pr.b.parts.txnVerifier()
	if v == nil {
		return txnCheck{}, nil
	}
	return p.verifyTxn(pr.c.ctx, v, *pr.r.TransactionID, pid, epoch, pr.r.Version >= 12)
}

// finisher waits, in the writer goroutine, until the high watermark
// covers every append (or the request's timeout passes). Before it
// blocks, it sends the responses the writer holds (flushResponses).
func (pr *produceRun) finisher() finisher {
	// Point each wait at its response entry now that the response slices
	// no longer grow.
	i := 0
	for ti := range pr.resp.Topics {
		for pi := range pr.resp.Topics[ti].Partitions {
			sp := &pr.resp.Topics[ti].Partitions[pi]
			if sp.ErrorCode == 0 {
				pr.waits[i].rp = sp
				i++
			}
		}
	}
	waits, resp := pr.waits, pr.resp
	timeout := time.Duration(pr.r.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return func(ctx context.Context) kmsg.Response {
		wctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		// One clock read per partition: each wait starts when the
		// one before it ended.
		start := time.Now()
		prev := start
		flushed := false
		for _, w := range waits {
			if !flushed && !w.p.ackReady(w.end, pr.r.Acks) {
				pr.c.flushResponses()
				flushed = true
			}
			if code := w.p.waitAcked(wctx, w.end, pr.r.Acks); code != 0 {
				w.rp.ErrorCode = code
				w.rp.BaseOffset = -1
			}
			now := time.Now()
			if waited := now.Sub(prev); pr.r.Acks == -1 && waited >= slowAckWait {
				if attrs, ok := w.p.slowAckState(now); ok {
					pr.b.logger.Warn("slow acks=all produce", append([]any{"topic", w.p.topic, "partition", w.p.index,
						"waited", waited.Round(time.Millisecond), "end", w.end}, attrs...)...)
				}
			}
			prev = now
		}
		pr.b.metrics.ackWait.observe(pr.r.Acks, prev.Sub(start))
		return resp
	}
}
