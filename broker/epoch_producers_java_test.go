package broker_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// The Java consumer validates a position that carries a leader epoch — a
// committed offset with one — with OffsetForLeaderEpoch before it
// fetches (it skips validation against a broker without the API). A
// ConsoleConsumer in a group whose offsets franz-go committed at epoch 0
// resumes from them. One JVM launch.
func TestKafkaConsumerValidatesEpochPositions(t *testing.T) {
	_, tool := kafkaHome(t)
	b := testutil.StartBroker(t, groupBrokerConfig())
	addr := b.Addr()
	adm := newAdmin(t, addr)
	const topic, group = "java-epochs", "java-epochs"
	createTopic(t, adm, topic, 2, nil)
	produceN(t, addr, topic, 2, 0, 12) // 6 per partition

	commits := kadm.Offsets{}
	commits.Add(kadm.Offset{Topic: topic, Partition: 0, At: 2, LeaderEpoch: 0})
	commits.Add(kadm.Offset{Topic: topic, Partition: 1, At: 4, LeaderEpoch: 0})
	resp, err := adm.CommitOffsets(testContext(t), group, commits)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	before := requestCounts(t, b.MetricsAddr())["OffsetForLeaderEpoch"]

	out := javaTool(t, testContext(t), tool, "", "org.apache.kafka.tools.consumer.ConsoleConsumer",
		"--bootstrap-server", addr, "--topic", topic, "--group", group, "--max-messages", "6", "--timeout-ms", "30000",
		"--formatter-property", "print.partition=true", "--formatter-property", "print.offset=true")
	line := regexp.MustCompile(`^Partition:(\d+)\tOffset:(\d+)\t`)
	next := map[int32]int64{0: 2, 1: 4}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("ConsoleConsumer printed %q", l)
		}
		var p int32
		var off int64
		fmt.Sscan(m[1], &p)
		fmt.Sscan(m[2], &off)
		if off != next[p] {
			t.Errorf("ConsoleConsumer read partition %d offset %d, want %d", p, off, next[p])
		}
		next[p] = off + 1
	}
	if next[0] != 6 || next[1] != 6 {
		t.Errorf("ConsoleConsumer stopped at %v, want both partitions read to 6", next)
	}
	if after := requestCounts(t, b.MetricsAddr())["OffsetForLeaderEpoch"]; after <= before {
		t.Errorf("the Java consumer sent no OffsetForLeaderEpoch (%v before, %v after)", before, after)
	}
}

// kafka-transactions describe-producers (TransactionsCommand) lists a
// partition's producers: an idempotent one, and a transactional one whose
// open transaction starts at offset 3. One JVM launch.
func TestKafkaTransactionsDescribeProducers(t *testing.T) {
	_, tool := kafkaHome(t)
	b := testutil.StartBroker(t, txnBrokerConfig())
	addr := b.Addr()
	const topic = "java-producers"
	createTopic(t, newAdmin(t, addr), topic, 1, nil)
	ctx := testContext(t)

	idem := newClient(t, addr, kgo.DefaultProduceTopic(topic))
	recs := []*kgo.Record{{Value: []byte("a")}, {Value: []byte("b")}, {Value: []byte("c")}}
	if err := idem.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	txn := txnProducer(t, addr, "java-producers-txn", kgo.TransactionTimeout(time.Minute))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	trec := &kgo.Record{Topic: topic, Value: []byte("t")}
	if err := txn.ProduceSync(ctx, trec).FirstErr(); err != nil {
		t.Fatal(err)
	}

	out := javaTool(t, ctx, tool, "", "org.apache.kafka.tools.TransactionsCommand",
		"--bootstrap-server", addr, "describe-producers", "--topic", topic, "--partition", "0")
	t.Logf("kafka-transactions describe-producers:\n%s", out)
	// ProducerId ProducerEpoch LatestCoordinatorEpoch LastSequence LastTimestamp CurrentTransactionStartOffset
	rows := map[int64][]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		var id int64
		if len(f) != 6 {
			continue
		}
		if _, err := fmt.Sscan(f[0], &id); err != nil {
			continue
		}
		rows[id] = f
	}
	want := map[int64]string{
		recs[0].ProducerID: fmt.Sprintf("%d 0 -1 2 None", recs[0].ProducerID),
		trec.ProducerID:    fmt.Sprintf("%d %d -1 0 3", trec.ProducerID, trec.ProducerEpoch),
	}
	if len(rows) != len(want) {
		t.Fatalf("describe-producers listed %d producers, want %d:\n%s", len(rows), len(want), out)
	}
	for id, w := range want {
		f := rows[id]
		if f == nil {
			t.Errorf("producer %d not listed", id)
			continue
		}
		if got := strings.Join([]string{f[0], f[1], f[2], f[3], f[5]}, " "); got != w {
			t.Errorf("producer %d: %q, want %q (id epoch coordinator-epoch last-seq txn-start)", id, got, w)
		}
	}
}
