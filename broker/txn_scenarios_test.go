package broker_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// describeTxn describes one transactional id through kadm.
func describeTxn(t testing.TB, adm *kadm.Client, id string) kadm.DescribedTransaction {
	t.Helper()
	ds, err := adm.DescribeTransactions(testContext(t), id)
	if err != nil {
		t.Fatalf("describe transactions: %v", err)
	}
	d, ok := ds[id]
	if !ok {
		t.Fatalf("transactional id %s not described", id)
	}
	if d.Err != nil {
		t.Fatalf("describe %s: %v", id, d.Err)
	}
	return d
}

// A transactional producer writes to three partitions and
// dies before committing; after the transaction timeout the coordinator
// aborts it; read_committed consumers never see those records,
// read_uncommitted consumers do.
func TestTxnAbandonedAbortedAfterTimeout(t *testing.T) {
	b := testutil.StartBroker(t, txnBrokerConfig())
	addr := b.Addr()
	adm := newAdmin(t, addr)
	const topic = "abandoned"
	createTopic(t, adm, topic, 3, nil)
	ctx := testContext(t)

	// A committed transaction before and after the abandoned one.
	good := txnProducer(t, addr, "abandoned-good")
	if err := produceTxn(ctx, good, topic, true, map[int32][]string{0: {"c1"}, 1: {"c1"}, 2: {"c1"}}); err != nil {
		t.Fatal(err)
	}
	dead := txnProducer(t, addr, "abandoned-dead", kgo.TransactionTimeout(500*time.Millisecond))
	if err := dead.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 3; p++ {
		if err := dead.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("lost")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// The producer "dies": it never ends the transaction. The open
	// transaction holds read_committed readers back.
	if d := describeTxn(t, adm, "abandoned-dead"); d.State != "Ongoing" || len(d.Topics[topic]) != 3 {
		t.Fatalf("abandoned transaction described as %s with %v", d.State, d.Topics)
	}
	testutil.Eventually(t, 20*time.Second, func() (bool, string) {
		d := describeTxn(t, adm, "abandoned-dead")
		return d.State == "CompleteAbort", "the coordinator to abort the abandoned transaction: state " + d.State
	})
	if err := produceTxn(ctx, good, topic, true, map[int32][]string{0: {"c2"}, 1: {"c2"}, 2: {"c2"}}); err != nil {
		t.Fatal(err)
	}

	committed := readAll(t, addr, topic, true)
	uncommitted := readAll(t, addr, topic, false)
	for p := int32(0); p < 3; p++ {
		if got := committed[p]; !slices.Equal(got, []string{"c1", "c2"}) {
			t.Errorf("read_committed partition %d: %v, want [c1 c2]", p, got)
		}
		if got := uncommitted[p]; !slices.Equal(got, []string{"c1", "lost", "c2"}) {
			t.Errorf("read_uncommitted partition %d: %v, want [c1 lost c2]", p, got)
		}
	}
	// The abandoned producer was fenced by the abort.
	if err := dead.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Error("the abandoned producer committed after its transaction was aborted")
	}
}

// Two producers with the same transactional.id: the older
// one is fenced (PRODUCER_FENCED / INVALID_PRODUCER_EPOCH) as soon as the
// newer one initialises, on produce and on commit; only the newer one's
// records are committed.
func TestTxnZombieProducerFenced(t *testing.T) {
	b := testutil.StartBroker(t, txnBrokerConfig())
	addr := b.Addr()
	adm := newAdmin(t, addr)
	const topic = "zombies"
	createTopic(t, adm, topic, 2, nil)
	ctx := testContext(t)

	old := txnProducer(t, addr, "zombie", kgo.RecordRetries(1))
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := old.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("old-1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	oldEpoch := describeTxn(t, adm, "zombie").ProducerEpoch

	// The newer producer initialises (its first produce does) and so
	// aborts the older one's transaction and fences it.
	young := txnProducer(t, addr, "zombie")
	if err := young.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := young.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 1, Value: []byte("new-1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if d := describeTxn(t, adm, "zombie"); d.ProducerEpoch <= oldEpoch {
		t.Fatalf("epoch %d after the new producer initialised, was %d", d.ProducerEpoch, oldEpoch)
	}

	for _, p := range []int32{0, 1} {
		err := old.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("old-2")}).FirstErr()
		if !isFenced(err) {
			t.Errorf("zombie produce to partition %d: %v, want fenced", p, err)
		}
	}
	if err := old.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Error("zombie committed")
	} else {
		t.Logf("zombie commit: %v", err)
	}
	if err := young.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("new producer's commit: %v", err)
	}
	got := readAll(t, addr, topic, true)
	if !slices.Equal(got[0], nil) || !slices.Equal(got[1], []string{"new-1"}) {
		t.Fatalf("read_committed: %v, want only new-1", got)
	}
}

// Kafka's kafka-transactions tool lists and describes Runnel's
// transactions.
func TestTxnInteropKafkaTransactionsTool(t *testing.T) {
	_, tool := kafkaHome(t)
	b := testutil.StartBroker(t, txnBrokerConfig())
	addr := b.Addr()
	adm := newAdmin(t, addr)
	createTopic(t, adm, "tooled", 2, nil)
	ctx := testContext(t)
	done := txnProducer(t, addr, "tool-done")
	if err := produceTxn(ctx, done, "tooled", true, map[int32][]string{0: {"a"}}); err != nil {
		t.Fatal(err)
	}
	open := txnProducer(t, addr, "tool-open", kgo.TransactionTimeout(time.Minute))
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if err := open.ProduceSync(ctx, &kgo.Record{Topic: "tooled", Partition: p, Value: []byte("b")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	d := describeTxn(t, adm, "tool-open")

	list := javaTool(t, ctx, tool, "", "org.apache.kafka.tools.TransactionsCommand", "--bootstrap-server", addr, "list")
	for _, want := range []string{
		fmt.Sprintf("tool-done\\s+0\\s+%d\\s+CompleteCommit", describeTxn(t, adm, "tool-done").ProducerID),
		fmt.Sprintf("tool-open\\s+0\\s+%d\\s+Ongoing", d.ProducerID),
	} {
		if !matches(want, list) {
			t.Errorf("list output does not match %q:\n%s", want, list)
		}
	}
	desc := javaTool(t, ctx, tool, "", "org.apache.kafka.tools.TransactionsCommand", "--bootstrap-server", addr, "describe", "--transactional-id", "tool-open")
	want := fmt.Sprintf(`0\s+tool-open\s+%d\s+%d\s+Ongoing\s+60000\s+\d+\s+\d+\s+(tooled-0,tooled-1|tooled-1,tooled-0)`, d.ProducerID, d.ProducerEpoch)
	if !matches(want, desc) {
		t.Errorf("describe output does not match %q:\n%s", want, desc)
	}
	if err := open.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
}

func matches(re, s string) bool {
	for _, line := range strings.Split(s, "\n") {
		if regexpMatch(re, line) {
			return true
		}
	}
	return false
}
