package broker

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/log"
)

// MakeTestBatch builds a RecordBatch v2 of one record per value, as a
// producer with id pid (-1: none), epoch and first sequence seq sends it,
// transactional when txn. Exported for the external tests of the package.
func MakeTestBatch(pid int64, epoch int16, seq int32, txn bool, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		var body []byte
		body = append(body, 0)                     // attributes
		body = binary.AppendVarint(body, 0)        // timestamp delta
		body = binary.AppendVarint(body, int64(i)) // offset delta
		body = binary.AppendVarint(body, -1)       // no key
		body = binary.AppendVarint(body, int64(len(v)))
		body = append(body, v...)
		body = binary.AppendVarint(body, 0) // no headers
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	b := make([]byte, 61, 61+len(recs))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	b[16] = 2
	attrs := uint16(0)
	if txn {
		attrs |= 0x10
	}
	binary.BigEndian.PutUint16(b[21:], attrs)
	binary.BigEndian.PutUint32(b[23:], uint32(len(values)-1))
	now := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint64(b[27:], now)
	binary.BigEndian.PutUint64(b[35:], now)
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[57:], uint32(len(values)))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func startTestBroker(t *testing.T, dir string) *Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Start(ctx, Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	// These tests drive the partition side alone, with producer ids no
	// coordinator handed out: no KIP-890 verification.
	b.parts.setTxnVerifier(nil)
	return b
}

// waitPartition waits until the broker holds topic's partition 0.
func waitPartition(t *testing.T, b *Broker, topic string) *partition {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if p := b.parts.get(topic, 0); p != nil {
			return p
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("partition %s-0 never opened", topic)
	return nil
}

// startTxnBroker starts a single broker with one partition of each
// internal topic, waits for its transaction coordinator, creates topic
// with parts partitions and waits until each is open here. It returns the
// broker and a client of it, both closed when the test ends.
func startTxnBroker(t *testing.T, topic string, parts int32) (*Broker, *kgo.Client) {
	t.Helper()
	ctx := context.Background()
	b, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.WaitTxnsLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, parts, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p := range parts {
		for b.parts.get(topic, p) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("partition %s-%d never opened", topic, p)
			}
			time.Sleep(5 * time.Millisecond) // polling the partitions' reconciliation
		}
	}
	return b, cl
}

// initTxnProducer initializes txnID's producer and returns its id and
// epoch.
func initTxnProducer(t *testing.T, cl *kgo.Client, txnID string) (int64, int16) {
	t.Helper()
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &txnID, 60_000
	ir, err := init.RequestWith(context.Background(), cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %v", err, ir)
	}
	return ir.ProducerID, ir.ProducerEpoch
}

// rawProduce sends one batch to partition 0 of topic (named by id too,
// for v13+) and returns the partition's response.
func rawProduce(t *testing.T, cl *kgo.Client, topic string, txnID *string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis, req.TransactionID = -1, 10000, txnID
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rt.TopicID = topicID(t, cl, topic)
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl.SeedBrokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

func topicID(t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	td, err := kadm.NewClient(cl).ListTopics(context.Background(), topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("topic id: %v %v", err, td[topic].Err)
	}
	return td[topic].ID
}

func rawFetch(t *testing.T, cl *kgo.Client, topic string, isolation int8) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes, req.IsolationLevel = 1<<20, isolation
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rt.TopicID = topicID(t, cl, topic)
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl.SeedBrokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

// consumeValues reads the topic from the start with a kgo consumer until
// it sees the value last, and returns the values before it.
func consumeValues(t *testing.T, addr, topic, last string, isolation kgo.IsolationLevel) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(isolation))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []string
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("never saw %q; got %q", last, out)
		}
		for _, r := range fs.Records() {
			if string(r.Value) == last {
				return out
			}
			out = append(out, string(r.Value))
		}
	}
}

func TestReadCommittedWithMarkers(t *testing.T) {
	dir := t.TempDir()
	b := startTestBroker(t, dir)
	defer func() { b.Close() }()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cl.Close() }()
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "rc"); err != nil {
		t.Fatal(err)
	}
	waitPartition(t, b, "rc")
	txn := "tx"
	produce := func(txnID *string, batch []byte) int64 {
		t.Helper()
		sp := rawProduce(t, cl, "rc", txnID, batch)
		if sp.ErrorCode != 0 {
			t.Fatalf("produce: error %d", sp.ErrorCode)
		}
		return sp.BaseOffset
	}
	produce(&txn, MakeTestBatch(1, 0, 0, true, "a1", "a2")) // 0-1
	produce(&txn, MakeTestBatch(2, 0, 0, true, "b1"))       // 2
	produce(nil, MakeTestBatch(-1, -1, -1, false, "c1"))    // 3

	p := b.parts.get("rc", 0)
	if !p.hasOngoingTxn(1) || !p.hasOngoingTxn(2) || p.hasOngoingTxn(3) {
		t.Fatal("ongoing transactions not tracked")
	}
	if lso, hw := p.lastStableOffset(), p.highWatermark(); lso != 0 || hw != 4 {
		t.Fatalf("LSO %d HW %d, want 0 and 4", lso, hw)
	}
	if sp := rawFetch(t, cl, "rc", 1); sp.LastStableOffset != 0 || sp.HighWatermark != 4 || len(sp.RecordBatches) != 0 {
		t.Fatalf("read_committed fetch inside a transaction: LSO %d HW %d, %d bytes", sp.LastStableOffset, sp.HighWatermark, len(sp.RecordBatches))
	}

	if off, err := p.appendMarker(ctx, log.Marker{ProducerID: 1, ProducerEpoch: 0, Commit: true}); err != nil || off != 4 {
		t.Fatalf("commit marker: %d, %v", off, err)
	}
	if lso := p.lastStableOffset(); lso != 2 {
		t.Fatalf("LSO after commit %d, want 2", lso)
	}
	if off, err := p.appendMarker(ctx, log.Marker{ProducerID: 2, ProducerEpoch: 0, Commit: false}); err != nil || off != 5 {
		t.Fatalf("abort marker: %d, %v", off, err)
	}
	if lso, hw := p.lastStableOffset(), p.highWatermark(); lso != 6 || hw != 6 {
		t.Fatalf("LSO %d HW %d after both markers, want 6", lso, hw)
	}
	// A marker for a producer with no transaction here completes nothing.
	if off, err := p.appendMarker(ctx, log.Marker{ProducerID: 9, ProducerEpoch: 0, Commit: false}); err != nil || off != 6 {
		t.Fatalf("marker without a transaction: %d, %v", off, err)
	}
	produce(nil, MakeTestBatch(-1, -1, -1, false, "end"))

	check := func(stage string) {
		t.Helper()
		if got := consumeValues(t, b.Addr(), "rc", "end", kgo.ReadCommitted()); !slices.Equal(got, []string{"a1", "a2", "c1"}) {
			t.Fatalf("%s: read_committed saw %q", stage, got)
		}
		if got := consumeValues(t, b.Addr(), "rc", "end", kgo.ReadUncommitted()); !slices.Equal(got, []string{"a1", "a2", "b1", "c1"}) {
			t.Fatalf("%s: read_uncommitted saw %q", stage, got)
		}
		sp := rawFetch(t, cl, "rc", 1)
		if len(sp.AbortedTransactions) != 1 || sp.AbortedTransactions[0].ProducerID != 2 || sp.AbortedTransactions[0].FirstOffset != 2 {
			t.Fatalf("%s: aborted transactions %+v", stage, sp.AbortedTransactions)
		}
		if sp := rawFetch(t, cl, "rc", 0); sp.AbortedTransactions != nil {
			t.Fatalf("%s: read_uncommitted got an aborted list", stage)
		}
	}
	check("live")

	// The aborted-transaction index survives a restart, and is rebuilt
	// from the log when its files are gone.
	for _, stage := range []string{"restart", "restart without txnindex"} {
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if stage == "restart without txnindex" {
			pdir := filepath.Join(dir, "logs", "rc-0")
			entries, _ := os.ReadDir(pdir)
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".txnindex") {
					os.Remove(filepath.Join(pdir, e.Name()))
				}
			}
		}
		b = startTestBroker(t, dir)
		cl.Close()
		if cl, err = kgo.NewClient(kgo.SeedBrokers(b.Addr())); err != nil {
			t.Fatal(err)
		}
		check(stage)
	}
}

func TestMarkerBumpsEpoch(t *testing.T) {
	b := startTestBroker(t, t.TempDir())
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "bump"); err != nil {
		t.Fatal(err)
	}
	waitPartition(t, b, "bump")
	txn := "tx"
	if sp := rawProduce(t, cl, "bump", &txn, MakeTestBatch(7, 3, 0, true, "x")); sp.ErrorCode != 0 {
		t.Fatalf("produce: %d", sp.ErrorCode)
	}
	p := b.parts.get("bump", 0)
	if _, err := p.appendMarker(ctx, log.Marker{ProducerID: 7, ProducerEpoch: 2, Commit: true}); txnErrorCode(err) != 47 { // INVALID_PRODUCER_EPOCH
		t.Fatalf("stale marker: %v", err)
	}
	// EndTxn v5 writes markers at the bumped epoch; the producer's next
	// transaction starts there at sequence 0.
	if _, err := p.appendMarker(ctx, log.Marker{ProducerID: 7, ProducerEpoch: 4, Commit: true}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		epoch int16
		seq   int32
		code  int16
	}{{3, 1, 47}, {4, 1, 45}, {4, 0, 0}} {
		if sp := rawProduce(t, cl, "bump", &txn, MakeTestBatch(7, c.epoch, c.seq, true, "y")); sp.ErrorCode != c.code {
			t.Fatalf("epoch %d seq %d: error %d, want %d", c.epoch, c.seq, sp.ErrorCode, c.code)
		}
	}
}
