package broker

import (
	"context"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The delayed-marker anomaly of Kafka-compatible brokers: a commit or
// abort meant for one transaction of a producer arrives after the
// producer has started its next one and completes that one instead.
// Under KIP-890 part 2 every EndTxn bumps the producer epoch and the
// markers carry the bumped epoch, so anything left over from an earlier
// transaction — a retried EndTxn, a produce, a marker — carries a stale
// epoch and is fenced, and the later transaction ends as its own EndTxn
// says.
func TestTxnDelayedEndTxnAndMarkerFenced(t *testing.T) {
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
	const topic = "late"
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	p := waitPartition(t, b, topic)
	txnID := "late-tx"

	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &txnID, 60_000
	ir, err := init.RequestWith(ctx, cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %v", err, ir)
	}
	pid := ir.ProducerID
	produce := func(epoch int16, seq int32, v string) int16 {
		t.Helper()
		return rawProduce(t, cl, topic, &txnID, MakeTestBatch(pid, epoch, seq, true, v)).ErrorCode
	}
	endTxn := func(epoch int16, commit bool) *kmsg.EndTxnResponse {
		t.Helper()
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = txnID, pid, epoch, commit
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Version < 5 {
			t.Fatalf("EndTxn v%d; this test needs v5", resp.Version)
		}
		return resp
	}
	fenced := func(code int16) bool {
		return code == kerr.ProducerFenced.Code || code == kerr.InvalidProducerEpoch.Code
	}

	// Transaction 1 at e0 commits; Produce v13 adds the partition.
	e0 := ir.ProducerEpoch
	if code := produce(e0, 0, "t1"); code != 0 {
		t.Fatalf("produce t1: %v", kerr.ErrorForCode(code))
	}
	r := endTxn(e0, true)
	if r.ErrorCode != 0 || r.ProducerID != pid || r.ProducerEpoch != e0+1 {
		t.Fatalf("commit t1: %v, producer %d epoch %d; want epoch %d", kerr.ErrorForCode(r.ErrorCode), r.ProducerID, r.ProducerEpoch, e0+1)
	}
	e1 := r.ProducerEpoch
	// An immediate retry of that EndTxn gets the same answer; an abort
	// at the old epoch is no retry of it.
	if r := endTxn(e0, true); r.ErrorCode != 0 || r.ProducerEpoch != e1 {
		t.Fatalf("retried commit t1: %v epoch %d", kerr.ErrorForCode(r.ErrorCode), r.ProducerEpoch)
	}
	if r := endTxn(e0, false); !fenced(r.ErrorCode) {
		t.Fatalf("abort at the epoch of committed t1: %v, want fenced", kerr.ErrorForCode(r.ErrorCode))
	}
	// A produce delayed from transaction 1 cannot open a transaction.
	if code := produce(e0, 1, "t1-late"); !fenced(code) {
		t.Fatalf("late produce of t1: %v, want fenced", kerr.ErrorForCode(code))
	}

	// Transaction 2 at e1.
	if code := produce(e1, 0, "t2-a"); code != 0 {
		t.Fatalf("produce t2: %v", kerr.ErrorForCode(code))
	}
	lso := p.lastStableOffset()
	// Transaction 1's EndTxn, delayed until now, commit or abort.
	for _, commit := range []bool{true, false} {
		if r := endTxn(e0, commit); !fenced(r.ErrorCode) {
			t.Fatalf("delayed EndTxn(commit %v) of t1 during t2: %v, want fenced", commit, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	// Transaction 1's commit marker, delayed until now (the
	// coordinator wrote it at e1; an abort for t1 would carry e0+1 as
	// well, so the stale epochs a delayed marker can carry are below e1).
	for _, commit := range []bool{true, false} {
		if _, err := p.appendMarker(ctx, pid, e0, commit, 0); txnErrorCode(err) != kerr.InvalidProducerEpoch.Code {
			t.Fatalf("delayed marker (commit %v) of t1 during t2: %v, want INVALID_PRODUCER_EPOCH", commit, err)
		}
	}
	if !p.hasOngoingTxn(pid) || p.lastStableOffset() != lso {
		t.Fatalf("a delayed marker completed t2: ongoing %v, LSO %d (was %d)", p.hasOngoingTxn(pid), p.lastStableOffset(), lso)
	}
	if code := produce(e1, 1, "t2-b"); code != 0 {
		t.Fatalf("produce t2-b: %v", kerr.ErrorForCode(code))
	}
	r = endTxn(e1, false)
	if r.ErrorCode != 0 || r.ProducerEpoch != e1+1 {
		t.Fatalf("abort t2: %v epoch %d", kerr.ErrorForCode(r.ErrorCode), r.ProducerEpoch)
	}
	e2 := r.ProducerEpoch

	// Transaction 3 commits; transaction 2's abort arriving again
	// afterwards changes nothing.
	if code := produce(e2, 0, "t3"); code != 0 {
		t.Fatalf("produce t3: %v", kerr.ErrorForCode(code))
	}
	if r := endTxn(e1, false); !fenced(r.ErrorCode) {
		t.Fatalf("delayed abort of t2 during t3: %v, want fenced", kerr.ErrorForCode(r.ErrorCode))
	}
	if _, err := p.appendMarker(ctx, pid, e1, false, 0); txnErrorCode(err) != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("delayed abort marker of t2 during t3: %v, want INVALID_PRODUCER_EPOCH", err)
	}
	if r := endTxn(e2, true); r.ErrorCode != 0 {
		t.Fatalf("commit t3: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	// The log holds each transaction's records and one marker per
	// EndTxn, at the epoch that EndTxn bumped to.
	type marker struct {
		epoch  int16
		commit bool
	}
	var markers []marker
	fp := rawFetch(t, cl, topic, 0)
	for rest := fp.RecordBatches; len(rest) > 0; {
		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(rest); err != nil {
			t.Fatal(err)
		}
		rest = rest[12+batch.Length:]
		if batch.Attributes&0x20 == 0 {
			continue
		}
		var rec kmsg.Record // a control batch holds one, uncompressed
		if err := rec.ReadFrom(batch.Records); err != nil || len(rec.Key) != 4 {
			t.Fatalf("control record: %v %x", err, rec.Key)
		}
		markers = append(markers, marker{batch.ProducerEpoch, rec.Key[3] == 1})
	}
	if want := []marker{{e1, true}, {e2, false}, {e2 + 1, true}}; !slices.Equal(markers, want) {
		t.Errorf("markers in the log: %+v, want %+v", markers, want)
	}
	if got, want := consumeValues(t, b.Addr(), topic, "t3", kgo.ReadUncommitted()), []string{"t1", "t2-a", "t2-b"}; !slices.Equal(got, want) {
		t.Errorf("read_uncommitted before t3: %q, want %q", got, want)
	}
	if got := consumeValues(t, b.Addr(), topic, "t3", kgo.ReadCommitted()); !slices.Equal(got, []string{"t1"}) {
		t.Errorf("read_committed before t3: %q, want [t1]", got)
	}
}
