package broker_test

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// produceRaw sends batches in one Produce request to partition 0 of topic
// straight to the broker, with the producer fields the test chose.
func produceRaw(t *testing.T, cl *kgo.Client, topic string, batches ...[]byte) (int16, int64) {
	t.Helper()
	ctx := testContext(t)
	td, err := newAdminFrom(cl).ListTopics(ctx, topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("list topic: %v %v", err, td[topic].Err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, td[topic].ID
	rp := kmsg.NewProduceRequestTopicPartition()
	for _, b := range batches {
		rp.Records = append(rp.Records, b...)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	sp := resp.Topics[0].Partitions[0]
	return sp.ErrorCode, sp.BaseOffset
}

func highWatermark(t *testing.T, cl *kgo.Client, topic string) int64 {
	t.Helper()
	offs, err := newAdminFrom(cl).ListEndOffsets(testContext(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := offs.Lookup(topic, 0)
	return o.Offset
}

// Retried batches are written once and answered with their
// original offsets; a gap gets OUT_OF_ORDER_SEQUENCE_NUMBER; a stale epoch
// INVALID_PRODUCER_EPOCH. The producer state survives a restart.
func TestIdempotentProduce(t *testing.T) {
	dir := t.TempDir()
	b := testutil.StartBroker(t, broker.Config{DataDir: dir})
	createTopic(t, newAdmin(t, b.Addr()), "idem", 1, nil)
	cl := newClient(t, b.Addr())

	type step struct {
		name    string
		batches [][]byte
		code    int16
		base    int64 // checked when code is 0
	}
	batch := broker.MakeTestBatch
	steps := []step{
		{"new producer must start at 0", [][]byte{batch(10, 0, 3, false, "x")}, kerr.OutOfOrderSequenceNumber.Code, 0},
		{"first", [][]byte{batch(10, 0, 0, false, "a", "b", "c")}, 0, 0},
		{"second", [][]byte{batch(10, 0, 3, false, "d", "e")}, 0, 3},
		{"retry of first", [][]byte{batch(10, 0, 0, false, "a", "b", "c")}, 0, 0},
		{"retry of second", [][]byte{batch(10, 0, 3, false, "d", "e")}, 0, 3},
		{"gap", [][]byte{batch(10, 0, 9, false, "z")}, kerr.OutOfOrderSequenceNumber.Code, 0},
		{"two batches in order", [][]byte{batch(10, 0, 5, false, "f"), batch(10, 0, 6, false, "g")}, 0, 5},
		{"second of two out of order", [][]byte{batch(10, 0, 7, false, "h"), batch(10, 0, 9, false, "i")}, kerr.OutOfOrderSequenceNumber.Code, 0},
		{"new epoch not at 0", [][]byte{batch(10, 1, 7, false, "h")}, kerr.OutOfOrderSequenceNumber.Code, 0},
		{"new epoch", [][]byte{batch(10, 1, 0, false, "h")}, 0, 7},
		{"stale epoch", [][]byte{batch(10, 0, 7, false, "i")}, kerr.InvalidProducerEpoch.Code, 0},
		{"other producer", [][]byte{batch(11, 0, 0, false, "j")}, 0, 8},
		{"non-idempotent", [][]byte{batch(-1, -1, -1, false, "k")}, 0, 9},
	}
	for _, s := range steps {
		code, base := produceRaw(t, cl, "idem", s.batches...)
		if code != s.code || (code == 0 && base != s.base) {
			t.Fatalf("%s: error %d base %d, want error %d base %d", s.name, code, base, s.code, s.base)
		}
	}
	if hw := highWatermark(t, cl, "idem"); hw != 10 {
		t.Fatalf("high watermark %d, want 10: a retry was written again", hw)
	}

	// After a restart the retry of the last batch is still answered with
	// its original offset.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = testutil.StartBroker(t, broker.Config{DataDir: dir})
	cl = newClient(t, b.Addr())
	for _, s := range []step{
		{"retry after restart", [][]byte{batch(10, 1, 0, false, "h")}, 0, 7},
		{"gap after restart", [][]byte{batch(10, 1, 2, false, "l")}, kerr.OutOfOrderSequenceNumber.Code, 0},
		{"next after restart", [][]byte{batch(10, 1, 1, false, "l")}, 0, 10},
		{"stale epoch after restart", [][]byte{batch(10, 0, 8, false, "m")}, kerr.InvalidProducerEpoch.Code, 0},
	} {
		code, base := produceRaw(t, cl, "idem", s.batches...)
		if code != s.code || (code == 0 && base != s.base) {
			t.Fatalf("%s: error %d base %d, want error %d base %d", s.name, code, base, s.code, s.base)
		}
	}
	if hw := highWatermark(t, cl, "idem"); hw != 11 {
		t.Fatalf("high watermark %d after restart, want 11", hw)
	}
}

// A client may not write control batches, nor transactional batches
// without a transactional id.
func TestProduceRejectsControlBatches(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	createTopic(t, newAdmin(t, b.Addr()), "ctl", 1, nil)
	cl := newClient(t, b.Addr())
	ctl := broker.MakeTestBatch(1, 0, 0, true, "x")
	ctl[22] |= 0x20 // control
	fixCRC(ctl)
	if code, _ := produceRaw(t, cl, "ctl", ctl); code != kerr.InvalidRecord.Code && code != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("control batch: error %d", code)
	}
	if code, _ := produceRaw(t, cl, "ctl", broker.MakeTestBatch(1, 0, 0, true, "x")); code != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional batch without a transactional id: error %d", code)
	}
	ctl = broker.MakeTestBatch(2, 0, 0, false, "x")
	ctl[22] |= 0x20
	fixCRC(ctl)
	if code, _ := produceRaw(t, cl, "ctl", ctl); code != kerr.InvalidRecord.Code {
		t.Fatalf("non-transactional control batch: error %d", code)
	}
}

// The kgo producer is idempotent by default: records produced through it
// arrive once each.
func TestIdempotentKgoProducer(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	createTopic(t, newAdmin(t, b.Addr()), "kgo-idem", 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("kgo-idem"))
	ctx := testContext(t)
	for i := 0; i < 100; i++ {
		cl.Produce(ctx, &kgo.Record{Value: []byte{byte(i)}}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if hw := highWatermark(t, cl, "kgo-idem"); hw != 100 {
		t.Fatalf("high watermark %d, want 100", hw)
	}
}

func newAdminFrom(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }

// fixCRC recomputes a batch's CRC32C after a test changed it.
func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
}
