package broker_test

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// listLatest returns ListOffsets(latest) for partition 0 at an isolation
// level.
func listLatest(t *testing.T, cl *kgo.Client, topic string, isolation int8) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = isolation
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testContext(t), cl.SeedBrokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].Offset
}

func values(rs []*kgo.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Value)
	}
	return out
}

// A transactional producer commits one transaction and aborts another; a
// read_committed consumer sees only the committed records, a
// read_uncommitted one sees all, and while a transaction is open the LSO
// (ListOffsets latest under read_committed) stays at its first offset.
func TestReadCommitted(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	createTopic(t, newAdmin(t, b.Addr()), "rc", 1, nil)
	ctx := testContext(t)
	tx := newClient(t, b.Addr(), kgo.TransactionalID("rc-tx"), kgo.DefaultProduceTopic("rc"))
	plain := newClient(t, b.Addr(), kgo.DefaultProduceTopic("rc"))

	txn := func(commit bool, vals ...string) {
		t.Helper()
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if err := tx.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	txn(true, "c1", "c2")
	txn(false, "a1")

	// An open transaction holds the LSO at its first offset.
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tx.ProduceSync(ctx, &kgo.Record{Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	openAt := listLatest(t, plain, "rc", 0) - 1
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if lso, hw := listLatest(t, plain, "rc", 1), listLatest(t, plain, "rc", 0); lso != openAt || hw != openAt+2 {
		t.Fatalf("LSO %d, HW %d; want %d, %d", lso, hw, openAt, openAt+2)
	}
	if err := tx.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("end")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	rc := values(consumeAll(t, b.Addr(), "rc", 4, kgo.FetchIsolationLevel(kgo.ReadCommitted())))
	if want := []string{"c1", "c2", "after", "end"}; !slices.Equal(rc, want) {
		t.Fatalf("read_committed: %q, want %q", rc, want)
	}
	ru := values(consumeAll(t, b.Addr(), "rc", 6))
	if want := []string{"c1", "c2", "a1", "open", "after", "end"}; !slices.Equal(ru, want) {
		t.Fatalf("read_uncommitted: %q, want %q", ru, want)
	}
}
