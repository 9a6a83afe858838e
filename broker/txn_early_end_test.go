package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// EndTxn answers once the decision is durable, before the markers. Until
// they are written nothing of the transaction is visible as committed:
// the partition's last stable offset stays below its records, so a
// read_committed consumer does not see them, and a RequireStable
// OffsetFetch answers UNSTABLE_OFFSET_COMMIT for the offsets it commits.
// Once the markers are written, both show the commit.
func TestTxnEndAnsweredBeforeMarkers(t *testing.T) {
	b := testutil.StartBroker(t, txnBrokerConfig())
	adm := newAdmin(t, b.Addr())
	const in, out, group = "early-in", "early-out", "early-g"
	createTopic(t, adm, in, 1, nil)
	createTopic(t, adm, out, 1, nil)
	ctx := testContext(t)

	seed := newClient(t, b.Addr())
	if err := seed.ProduceSync(ctx, &kgo.Record{Topic: in, Value: []byte("a")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(b.Addr()),
		kgo.TransactionalID("early"),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var polled int
	for polled == 0 {
		fs := sess.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
		polled += fs.NumRecords()
	}
	if err := sess.Begin(); err != nil {
		t.Fatal(err)
	}
	if err := sess.ProduceSync(ctx, &kgo.Record{Topic: out, Value: []byte("out-a")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	release := b.HoldTxnMarkers()
	defer func() {
		if release != nil {
			release()
		}
	}()
	committed, err := sess.End(ctx, kgo.TryCommit)
	if err != nil || !committed {
		t.Fatalf("commit: committed %v, %v", committed, err)
	}

	// Markers held: the record is written but not stable, the offset
	// pending.
	lso, err := adm.ListCommittedOffsets(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lso.Lookup(out, 0); o.Offset != 0 {
		t.Fatalf("last stable offset %d before the marker, want 0", o.Offset)
	}
	if o, _ := end.Lookup(out, 0); o.Offset != 1 {
		t.Fatalf("high watermark %d, want 1 (the record)", o.Offset)
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group, req.RequireStable = group, true
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = in, []int32{0}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, seed)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("RequireStable offset fetch before the marker: %v (offset %d), want UNSTABLE_OFFSET_COMMIT", kerr.ErrorForCode(code), resp.Topics[0].Partitions[0].Offset)
	}

	release()
	release = nil
	if offs := stableOffsets(t, seed, group, in, 1); offs[0] != 1 {
		t.Fatalf("stable offset after the markers: %d, want 1", offs[0])
	}
	if got := readAll(t, b.Addr(), out, true); len(got[0]) != 1 || got[0][0] != "out-a" {
		t.Fatalf("read_committed after the markers: %q, want [out-a]", got[0])
	}
}
