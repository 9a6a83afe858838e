package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// describeProducers sends DescribeProducers for the partitions of each
// topic and returns the answers by "topic/partition".
func describeProducers(t *testing.T, cl *kgo.Client, parts map[string][]int32) map[string]kmsg.DescribeProducersResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrDescribeProducersRequest()
	for topic, ps := range parts {
		rt := kmsg.NewDescribeProducersRequestTopic()
		rt.Topic, rt.Partitions = topic, ps
		req.Topics = append(req.Topics, rt)
	}
	// Straight to the one broker: the client would drop unknown
	// partitions before sending.
	resp, err := req.RequestWith(testContext(t), cl.Broker(0))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]kmsg.DescribeProducersResponseTopicPartition)
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			out[fmt.Sprintf("%s/%d", rt.Topic, rp.Partition)] = rp
		}
	}
	return out
}

// producerLine formats an active producer without its timestamp.
func producerLine(p kmsg.DescribeProducersResponseTopicPartitionActiveProducer) string {
	return fmt.Sprintf("id %d epoch %d last seq %d coordinator epoch %d txn start %d",
		p.ProducerID, p.ProducerEpoch, p.LastSequence, p.CoordinatorEpoch, p.CurrentTxnStartOffset)
}

// DescribeProducers lists each partition's producers from its producer
// state: an idempotent producer with its last sequence, a transactional
// one with its open transaction's first offset until the transaction
// commits, when the marker's coordinator epoch shows instead. Unknown
// partitions and topics are UNKNOWN_TOPIC_OR_PARTITION.
func TestDescribeProducers(t *testing.T) {
	b := testutil.StartBroker(t, txnBrokerConfig())
	addr := b.Addr()
	const topic = "producers"
	createTopic(t, newAdmin(t, addr), topic, 2, nil)
	ctx := testContext(t)
	before := time.Now().Add(-time.Second).UnixMilli()

	idem := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for i, p := range []int32{0, 0, 0, 1, 1} {
		recs = append(recs, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "idem %d", i)})
	}
	if err := idem.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	idemID := recs[0].ProducerID

	txn := txnProducer(t, addr, "producers-txn", kgo.TransactionTimeout(time.Minute))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	trecs := []*kgo.Record{{Topic: topic, Partition: 0, Value: []byte("t0")}, {Topic: topic, Partition: 0, Value: []byte("t1")}}
	if err := txn.ProduceSync(ctx, trecs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	txnID, txnEpoch := trecs[0].ProducerID, trecs[0].ProducerEpoch
	if trecs[0].Offset != 3 {
		t.Fatalf("transaction's first record at offset %d, want 3", trecs[0].Offset)
	}
	after := time.Now().Add(time.Second).UnixMilli()

	unknown := kerr.UnknownTopicOrPartition.Code
	got := describeProducers(t, idem, map[string][]int32{topic: {0, 1, 7}, "no-such-topic": {0}})
	want := map[string][]string{
		topic + "/0": {
			fmt.Sprintf("id %d epoch 0 last seq 2 coordinator epoch -1 txn start -1", idemID),
			fmt.Sprintf("id %d epoch %d last seq 1 coordinator epoch -1 txn start 3", txnID, txnEpoch),
		},
		topic + "/1": {fmt.Sprintf("id %d epoch 0 last seq 1 coordinator epoch -1 txn start -1", idemID)},
	}
	if len(got) != 4 {
		t.Fatalf("%d partitions answered, want 4: %v", len(got), got)
	}
	for _, k := range []string{topic + "/7", "no-such-topic/0"} {
		if got[k].ErrorCode != unknown {
			t.Errorf("%s: error %v, want UNKNOWN_TOPIC_OR_PARTITION", k, kerr.ErrorForCode(got[k].ErrorCode))
		}
	}
	for k, lines := range want {
		rp := got[k]
		if rp.ErrorCode != 0 {
			t.Fatalf("%s: %v", k, kerr.ErrorForCode(rp.ErrorCode))
		}
		var have []string
		for _, p := range rp.ActiveProducers {
			have = append(have, producerLine(p))
			if p.LastTimestamp < before || p.LastTimestamp > after {
				t.Errorf("%s: producer %d last timestamp %d, not in [%d, %d]", k, p.ProducerID, p.LastTimestamp, before, after)
			}
		}
		if fmt.Sprint(have) != fmt.Sprint(lines) {
			t.Errorf("%s producers:\n%v\nwant\n%v", k, have, lines)
		}
	}

	// kadm finds the open transaction the same way.
	ds, err := newAdmin(t, addr).DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	var open []int64
	ds.EachProducer(func(d kadm.DescribedProducer) {
		if d.CurrentTxnStartOffset >= 0 {
			open = append(open, d.ProducerID, d.CurrentTxnStartOffset)
		}
	})
	if fmt.Sprint(open) != fmt.Sprint([]int64{txnID, 3}) {
		t.Errorf("kadm: open transactions (producer id, start offset) %v, want [%d 3]", open, txnID)
	}

	// Committed: no transaction open, and the marker's coordinator epoch.
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	got = describeProducers(t, idem, map[string][]int32{topic: {0}})
	var found bool
	for _, p := range got[topic+"/0"].ActiveProducers {
		if p.ProducerID != txnID {
			continue
		}
		found = true
		if p.CurrentTxnStartOffset != -1 || p.CoordinatorEpoch < 0 || p.ProducerEpoch < int32(txnEpoch) {
			t.Errorf("after commit: %s", producerLine(p))
		}
	}
	if !found {
		t.Errorf("after commit: transactional producer %d gone: %v", txnID, got)
	}
}
