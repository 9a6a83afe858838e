package broker

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A transaction's first produce (v12+, KIP-890 part 2: the partitions are
// added by the produce) carries every partition it writes; they are added
// to the transaction in one write of __transaction_state, not one durable
// write per partition in turn.
func TestTxnProduceAddsPartitionsInOneWrite(t *testing.T) {
	ctx := context.Background()
	const topic, parts = "multi", 4
	b, cl := startTxnBroker(t, topic, parts)
	txnID := "multi-tx"
	pid, epoch := initTxnProducer(t, cl, txnID)
	state := b.parts.get(txnStateTopic, 0)
	before := state.log.EndOffset()

	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis, req.TransactionID = -1, 10000, &txnID
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID(t, cl, topic)
	for p := range int32(parts) {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, MakeTestBatch(pid, epoch, 0, true, "v")
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
		if !b.parts.get(topic, p).hasOngoingTxn(pid) {
			t.Errorf("%s[%d]: no transaction open", topic, p)
		}
	}
}
