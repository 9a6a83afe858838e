package broker

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/log"
	"github.com/runnel-dev/runnel/broker/internal/txn"
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
	const topic = "late"
	b, cl := startTxnBroker(t, topic, 1)
	p := b.parts.get(topic, 0)
	txnID := "late-tx"
	pid, e0 := initTxnProducer(t, cl, txnID)
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
	// A marker at t1's data epoch, delayed until now. (t1's own markers
	// carry e1, the epoch t2 writes at: TestTxnDelayedTV2MarkerAtBumpedEpoch
	// covers those.)
	for _, commit := range []bool{true, false} {
		if _, err := p.appendMarker(ctx, log.Marker{ProducerID: pid, ProducerEpoch: e0, Commit: commit, TV2: true}); txnErrorCode(err) != kerr.InvalidProducerEpoch.Code {
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
	if _, err := p.appendMarker(ctx, log.Marker{ProducerID: pid, ProducerEpoch: e1, Commit: false, TV2: true}); txnErrorCode(err) != kerr.InvalidProducerEpoch.Code {
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

// Transaction N's markers carry the epoch EndTxn v5 bumped to, e+1, and
// transaction N+1's data is written at e+1 as well, so the epoch alone
// does not tell a delayed duplicate of N's marker from N+1's own. As in
// Kafka 4, a transaction version 2 marker must be above the epoch of the
// open transaction's data: a duplicate of N's commit arriving while N+1
// is open is refused, on a data partition and on __consumer_offsets, and
// N+1 ends as its own EndTxn says. The same marker with no transaction
// open — the coordinator re-sending after a restart — is accepted and
// completes nothing.
func TestTxnDelayedTV2MarkerAtBumpedEpoch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.WaitTxnsLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitGroupsLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const topic, groupID = "dup", "dup-group"
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	p := waitPartition(t, b, topic)
	txnID := "dup-tx"

	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &txnID, 60_000
	ir, err := init.RequestWith(ctx, cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %v", err, ir)
	}
	pid := ir.ProducerID
	produce := func(epoch int16, seq int32, v string) {
		t.Helper()
		if code := rawProduce(t, cl, topic, &txnID, MakeTestBatch(pid, epoch, seq, true, v)).ErrorCode; code != 0 {
			t.Fatalf("produce %s: %v", v, kerr.ErrorForCode(code))
		}
	}
	endTxn := func(epoch int16, commit bool) int16 {
		t.Helper()
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = txnID, pid, epoch, commit
		resp, err := req.RequestWith(ctx, cl)
		switch {
		case err != nil:
			t.Fatal(err)
		case resp.Version < 5:
			t.Fatalf("EndTxn v%d; this test needs v5", resp.Version)
		case resp.ErrorCode != 0 || resp.ProducerEpoch != epoch+1:
			t.Fatalf("EndTxn(commit %v) at %d: %v, epoch %d", commit, epoch, kerr.ErrorForCode(resp.ErrorCode), resp.ProducerEpoch)
		}
		return resp.ProducerEpoch
	}
	// commitOffset commits offset for the group in the transaction at
	// epoch, through AddOffsetsToTxn and TxnOffsetCommit.
	commitOffset := func(epoch int16, offset int64) {
		t.Helper()
		add := kmsg.NewPtrAddOffsetsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, pid, epoch, groupID
		if r, err := add.RequestWith(ctx, cl); err != nil || r.ErrorCode != 0 {
			t.Fatalf("add offsets to txn: %v %v", err, r)
		}
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = txnID, groupID, pid, epoch, -1
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Offset, rp.LeaderEpoch = offset, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		r, err := req.RequestWith(ctx, cl)
		if err != nil || r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("txn offset commit: %v %v", err, r)
		}
	}
	committedOffset := func() int64 {
		t.Helper()
		offs, err := kadm.NewClient(cl).FetchOffsets(ctx, groupID)
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := offs.Lookup(topic, 0); ok {
			return o.At
		}
		return -1
	}
	// The coordinator's marker for this producer, as writeTxnMarker
	// gets it; a short deadline, since an accepted one is durable at
	// once on one node.
	writeMarker := func(tp txn.TopicPartition, epoch int16, commit bool) error {
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return b.writeTxnMarker(mctx, txn.Marker{TopicPartition: tp, ProducerID: pid, ProducerEpoch: epoch, Commit: commit, TV2: true})
	}
	dataTP := txn.TopicPartition{Topic: topic, Partition: 0}
	offsetsTP := txn.TopicPartition{Topic: offsetsTopic, Partition: 0}

	// Transaction N at e0 commits its record and offset 1; its markers
	// carry e1.
	e0 := ir.ProducerEpoch
	produce(e0, 0, "n")
	commitOffset(e0, 1)
	e1 := endTxn(e0, true)
	if got := committedOffset(); got != 1 {
		t.Fatalf("committed offset after N: %d, want 1", got)
	}

	// Transaction N+1 at e1: a record and offset 2, both pending.
	produce(e1, 0, "n+1")
	commitOffset(e1, 2)
	lso := p.lastStableOffset()
	if !p.hasOngoingTxn(pid) || lso != 2 { // "n" at 0, N's marker at 1
		t.Fatalf("N+1 open: ongoing %v, LSO %d; want true, 2", p.hasOngoingTxn(pid), lso)
	}

	// N's commit marker again, at e1 and flagged TV2 as the coordinator
	// sends it, on both partitions; and an abort at e1.
	for _, tp := range []txn.TopicPartition{dataTP, offsetsTP} {
		for _, commit := range []bool{true, false} {
			if err := writeMarker(tp, e1, commit); txnErrorCode(err) != kerr.InvalidProducerEpoch.Code {
				t.Fatalf("duplicate TV2 marker (commit %v) at %d on %s during N+1: %v, want INVALID_PRODUCER_EPOCH", commit, e1, tp.Topic, err)
			}
		}
	}
	if !p.hasOngoingTxn(pid) || p.lastStableOffset() != lso {
		t.Fatalf("a duplicate marker completed N+1: ongoing %v, LSO %d (was %d)", p.hasOngoingTxn(pid), p.lastStableOffset(), lso)
	}
	if got := committedOffset(); got != 1 {
		t.Fatalf("a duplicate marker committed N+1's offset: %d, want 1", got)
	}
	fp := rawFetch(t, cl, topic, 1)
	if fp.ErrorCode != 0 || fp.LastStableOffset != lso {
		t.Fatalf("read_committed fetch: %v, LSO %d; want %d", kerr.ErrorForCode(fp.ErrorCode), fp.LastStableOffset, lso)
	}

	// N+1 aborts as its EndTxn says: its record and offset are dropped.
	e2 := endTxn(e1, false)
	if p.hasOngoingTxn(pid) {
		t.Fatal("N+1 still open after its abort")
	}
	// A repeat of N+1's abort with nothing open is accepted: the
	// coordinator re-sends the markers of a transaction it finds
	// prepared after a restart.
	for _, tp := range []txn.TopicPartition{dataTP, offsetsTP} {
		if err := writeMarker(tp, e2, false); err != nil {
			t.Fatalf("repeated TV2 abort at %d on %s with nothing open: %v", e2, tp.Topic, err)
		}
	}
	if got := committedOffset(); got != 1 {
		t.Fatalf("committed offset after N+1 aborted: %d, want 1", got)
	}

	// N+2 commits; read_committed holds N's and N+2's records only.
	produce(e2, 0, "n+2")
	endTxn(e2, true)
	produce(e2+1, 0, "end")
	endTxn(e2+1, true)
	if got, want := consumeValues(t, b.Addr(), topic, "end", kgo.ReadCommitted()), []string{"n", "n+2"}; !slices.Equal(got, want) {
		t.Errorf("read_committed: %q, want %q", got, want)
	}
	if got, want := consumeValues(t, b.Addr(), topic, "end", kgo.ReadUncommitted()), []string{"n", "n+1", "n+2"}; !slices.Equal(got, want) {
		t.Errorf("read_uncommitted: %q, want %q", got, want)
	}
}
