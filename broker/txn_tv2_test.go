package broker_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Transaction version 2 (KIP-890 part 2) over TCP: the broker finalizes
// transaction.version 2, so franz-go ends every transaction with EndTxn
// v5 (which bumps the producer epoch) and adds partitions with Produce
// v12+ and TxnOffsetCommit v5 instead of AddPartitionsToTxn and
// AddOffsetsToTxn; a client held below those versions stays on the old
// path and works the same.

// The finalized transaction.version is 2 in ApiVersions v3+, with a
// stable finalized-features epoch.
func TestTxnV2FeatureAdvertised(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	cl := newClient(t, b.Addr())
	var epochs []int64
	for v := int16(3); v <= 4; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "runnel-test", "1"
		resp, err := req.RequestWith(testContext(t), cl.SeedBrokers()[0])
		if err != nil {
			t.Fatal(err)
		}
		vs := kversion.FromApiVersionsResponse(resp)
		supported := map[string][2]int16{}
		vs.EachSupportedFeature(func(name string, lo, hi int16) { supported[name] = [2]int16{lo, hi} })
		finalized := map[string]int16{}
		vs.EachFinalizedFeature(func(name string, level int16) { finalized[name] = level })
		if got := supported["transaction.version"]; got != [2]int16{0, 2} {
			t.Errorf("v%d: supported transaction.version %v, want 0..2", v, got)
		}
		if got, ok := finalized["transaction.version"]; !ok || got != 2 {
			t.Errorf("v%d: finalized transaction.version %d (present %v), want 2", v, got, ok)
		}
		if resp.FinalizedFeaturesEpoch < 0 {
			t.Errorf("v%d: finalized features epoch %d: clients ignore the finalized features", v, resp.FinalizedFeaturesEpoch)
		}
		epochs = append(epochs, resp.FinalizedFeaturesEpoch)
	}
	if epochs[0] != epochs[1] {
		t.Errorf("finalized features epoch changed between requests: %v", epochs)
	}
}

// txnRoundTrip runs a transactional producer with txnID through three
// transactions (commit, abort, commit) on topic and a GroupTransactSession
// that moves the records of in to topic with the group's offsets, and
// returns the producer's epoch before and after each EndTxn.
func txnRoundTrip(t *testing.T, addr, topic, in, txnID string, opts ...kgo.Opt) []int16 {
	t.Helper()
	ctx := testContext(t)
	prod := txnProducer(t, addr, txnID, opts...)
	// InitProducerId first: franz-go decides the path at
	// BeginTransaction from the ApiVersions it has seen.
	id, epoch, err := prod.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	epochs := []int16{epoch}
	for i, commit := range []bool{true, false, true} {
		vals := map[int32][]string{0: {fmt.Sprintf("%s-%d-0", txnID, i)}, 1: {fmt.Sprintf("%s-%d-1", txnID, i)}}
		if err := produceTxn(ctx, prod, topic, commit, vals); err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
		gotID, epoch, err := prod.ProducerID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if gotID != id {
			t.Fatalf("producer id moved from %d to %d", id, gotID)
		}
		epochs = append(epochs, epoch)
	}

	// Consume-transform-produce with the offsets in the transaction.
	seed := newClient(t, addr, kgo.DefaultProduceTopic(in), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 4 {
		if err := seed.ProduceSync(ctx, &kgo.Record{Partition: int32(i % 2), Value: fmt.Appendf(nil, "in-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	group := txnID + "-group"
	sess, err := kgo.NewGroupTransactSession(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.TransactionalID(txnID + "-session"),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	moved := 0
	for moved < 4 {
		fs := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("moved %d of 4 records before the deadline", moved)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			sess.Produce(ctx, &kgo.Record{Topic: topic, Partition: r.Partition, Value: append([]byte("out-"), r.Value...)}, nil)
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil || !committed {
			t.Fatalf("session commit: committed %v, %v", committed, err)
		}
		moved += n
	}
	offs, err := kadm.NewClient(seed).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if o, ok := offs.Lookup(in, p); !ok || o.At != 2 {
			t.Errorf("group %s offset for %s[%d]: %+v, want 2", group, in, p, o)
		}
	}

	got := readAll(t, addr, topic, true)
	for p := int32(0); p < 2; p++ {
		want := []string{fmt.Sprintf("%s-0-%d", txnID, p), fmt.Sprintf("%s-2-%d", txnID, p), fmt.Sprintf("out-in-%d", p), fmt.Sprintf("out-in-%d", p+2)}
		if !slices.Equal(got[p], want) {
			t.Errorf("read_committed %s[%d]: %q, want %q", topic, p, got[p], want)
		}
	}
	return epochs
}

// A franz-go transactional producer takes the KIP-890 part 2 path over
// TCP: no AddPartitionsToTxn or AddOffsetsToTxn is ever sent, and every
// EndTxn, commit or abort, bumps the producer epoch.
func TestTxnV2OverTCP(t *testing.T) {
	cfg := txnBrokerConfig()
	cfg.MetricsListen = "127.0.0.1:0"
	b := testutil.StartBroker(t, cfg)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "tv2", 2, nil)
	createTopic(t, adm, "tv2-in", 2, nil)

	epochs := txnRoundTrip(t, b.Addr(), "tv2", "tv2-in", "tv2")
	for i := 1; i < len(epochs); i++ {
		if epochs[i] != epochs[i-1]+1 {
			t.Errorf("producer epochs %v: EndTxn %d did not bump the epoch by one", epochs, i)
		}
	}
	if d := describeTxn(t, adm, "tv2"); d.ProducerEpoch != epochs[len(epochs)-1] {
		t.Errorf("coordinator holds epoch %d, the producer %d", d.ProducerEpoch, epochs[len(epochs)-1])
	}
	counts := requestCounts(t, b.MetricsAddr())
	for _, api := range []string{"AddPartitionsToTxn", "AddOffsetsToTxn"} {
		if counts[api] != 0 {
			t.Errorf("%s sent %v times on the transaction version 2 path", api, counts[api])
		}
	}
	for _, api := range []string{"EndTxn", "TxnOffsetCommit", "Produce"} {
		if counts[api] == 0 {
			t.Errorf("no %s request served", api)
		}
	}
	t.Logf("requests: %v", counts)
}

// A client held to EndTxn v4 and Produce v11 stays on the old path
// (AddPartitionsToTxn, AddOffsetsToTxn, the epoch unchanged by EndTxn)
// and its transactions work the same.
func TestTxnV1PinnedClient(t *testing.T) {
	cfg := txnBrokerConfig()
	cfg.MetricsListen = "127.0.0.1:0"
	b := testutil.StartBroker(t, cfg)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "tv1", 2, nil)
	createTopic(t, adm, "tv1-in", 2, nil)

	vs := kversion.Stable()
	vs.SetMaxKeyVersion(int16(kmsg.EndTxn), 4)
	vs.SetMaxKeyVersion(int16(kmsg.Produce), 11)
	epochs := txnRoundTrip(t, b.Addr(), "tv1", "tv1-in", "tv1", kgo.MaxVersions(vs))
	for _, e := range epochs {
		if e != epochs[0] {
			t.Errorf("producer epochs %v: the old path must not bump the epoch", epochs)
			break
		}
	}
	counts := requestCounts(t, b.MetricsAddr())
	for _, api := range []string{"AddPartitionsToTxn", "AddOffsetsToTxn", "EndTxn", "TxnOffsetCommit"} {
		if counts[api] == 0 {
			t.Errorf("no %s request served on the old path", api)
		}
	}
	t.Logf("requests: %v", counts)
}

// A producer that used the old path and one on transaction version 2
// take turns with the same transactional id, as in a rolling upgrade and
// a rollback: each fences the other and commits.
func TestTxnV1V2SameTransactionalID(t *testing.T) {
	b := testutil.StartBroker(t, txnBrokerConfig())
	addr := b.Addr()
	createTopic(t, newAdmin(t, addr), "tvmix", 1, nil)
	ctx := testContext(t)
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(int16(kmsg.EndTxn), 4)
	vs.SetMaxKeyVersion(int16(kmsg.Produce), 11)
	var want []string
	for i, pinned := range []bool{true, false, true, false} {
		var opts []kgo.Opt
		if pinned {
			opts = append(opts, kgo.MaxVersions(vs))
		}
		cl := txnProducer(t, addr, "tvmix", opts...)
		if _, _, err := cl.ProducerID(ctx); err != nil {
			t.Fatal(err)
		}
		for j, commit := range []bool{true, false, true} {
			v := fmt.Sprintf("r%d-%d", i, j)
			if err := produceTxn(ctx, cl, "tvmix", commit, map[int32][]string{0: {v}}); err != nil {
				t.Fatalf("producer %d (pinned %v) transaction %d: %v", i, pinned, j, err)
			}
			if commit {
				want = append(want, v)
			}
		}
		// Left open for the next producer to abort when it
		// initialises.
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "tvmix", Value: []byte("open")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	end := txnProducer(t, addr, "tvmix")
	if err := produceTxn(ctx, end, "tvmix", true, map[int32][]string{0: {"end"}}); err != nil {
		t.Fatal(err)
	}
	want = append(want, "end")
	if got := readAll(t, addr, "tvmix", true)[0]; !slices.Equal(got, want) {
		t.Fatalf("read_committed: %q, want %q", got, want)
	}
}
