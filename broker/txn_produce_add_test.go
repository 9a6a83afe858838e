package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A transaction's first produce (v12+, KIP-890 part 2: the partitions are
// added by the produce) carries every partition it writes; they are added
// to the transaction in one write of __transaction_state, not one durable
// write per partition in turn.
func TestTxnProduceAddsPartitionsInOneWrite(t *testing.T) {
	ctx := context.Background()
	b, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.WaitTxnsLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const topic, parts = "multi", 4
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, parts, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p := range int32(parts) {
		for b.parts.get(topic, p) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("partition %s-%d never opened", topic, p)
			}
			time.Sleep(5 * time.Millisecond) // polling the partitions' reconciliation
		}
	}
	txnID := "multi-tx"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &txnID, 60_000
	ir, err := init.RequestWith(ctx, cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %v", err, ir)
	}
	state := b.parts.get(txnStateTopic, 0)
	before := state.log.EndOffset()

	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis, req.TransactionID = -1, 10000, &txnID
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID(t, cl, topic)
	for p := range int32(parts) {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, MakeTestBatch(ir.ProducerID, ir.ProducerEpoch, 0, true, "v")
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	if resp.Version < 12 {
		t.Fatalf("Produce v%d; this test needs v12+", resp.Version)
	}
	for _, sp := range resp.Topics[0].Partitions {
		if sp.ErrorCode != 0 {
			t.Fatalf("produce %s[%d]: %v", topic, sp.Partition, kerr.ErrorForCode(sp.ErrorCode))
		}
	}
	if n := state.log.EndOffset() - before; n != 1 {
		t.Errorf("__transaction_state took %d writes for the %d partitions of one produce, want 1", n, parts)
	}
	for p := range int32(parts) {
		if !b.parts.get(topic, p).hasOngoingTxn(ir.ProducerID) {
			t.Errorf("%s[%d]: no transaction open", topic, p)
		}
	}
}
