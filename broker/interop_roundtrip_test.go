package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Round trips with clients that share no code with franz-go: librdkafka
// (through confluent-kafka-python) and kafkajs (pure JavaScript). Each
// peer produces plain records with an idempotent producer, commits one
// transaction and aborts another, then reads the topic back as a member of
// a consumer group under read_committed, committing as it goes. The broker
// must give the peer, and franz-go after it, exactly the plain and the
// committed records, and keep the group's offsets.

const (
	roundTripPartitions = 3
	roundTripPlain      = 30 // records of the idempotent producer
	roundTripTxn        = 10 // records of each transaction
)

// roundTripWant is what a read_committed reader must see, per partition in
// the order produced: the plain records, then the committed transaction's.
func roundTripWant(client string) []peerRecord {
	var want []peerRecord
	for i := range roundTripPlain {
		r := peerRecord{Partition: int32(i % roundTripPartitions), Offset: -1,
			Value: fmt.Appendf(nil, "value %d", i), Headers: []peerHeader{{"origin", []byte(client)}}}
		if i%5 != 0 {
			r.Key = fmt.Appendf(nil, "key-%d", i%4)
		}
		want = append(want, r)
	}
	for i := range roundTripTxn {
		want = append(want, peerRecord{Partition: int32(i % roundTripPartitions), Offset: -1,
			Key: []byte("txn"), Value: fmt.Appendf(nil, "committed %d", i)})
	}
	return want
}

// checkRoundTrip checks what the peer printed (kcat -J lines) against
// what it produced, then reads the topic with franz-go under both
// isolation levels and the group's committed offsets.
func checkRoundTrip(t *testing.T, addr, topic, group, client, out string) {
	t.Helper()
	want := roundTripWant(client)
	got := parseKcatJSON(t, out)
	checkRecords(t, want, got)

	committed := consumeAll(t, addr, topic, len(want), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var fromGo []peerRecord
	for _, r := range committed {
		fromGo = append(fromGo, fromKgo(r))
	}
	checkRecords(t, got, fromGo) // offsets included: the peer saw what franz-go sees

	// The aborted transaction's records are in the log: read_uncommitted
	// returns them, so read_committed above really filtered them.
	all := consumeAll(t, addr, topic, len(want)+roundTripTxn)
	aborted := 0
	for _, r := range all {
		if bytes.HasPrefix(r.Value, []byte("aborted ")) {
			aborted++
		}
	}
	if aborted != roundTripTxn {
		t.Errorf("read_uncommitted saw %d aborted records, want %d", aborted, roundTripTxn)
	}

	// The group committed, per partition, past the last record it read.
	last := map[int32]int64{}
	for _, r := range got {
		last[r.Partition] = max(last[r.Partition], r.Offset)
	}
	offsets, err := newAdmin(t, addr).FetchOffsets(testContext(t), group)
	if err != nil {
		t.Fatal(err)
	}
	for p, off := range last {
		o, ok := offsets.Lookup(topic, p)
		if !ok || o.Err != nil || o.At < off+1 {
			t.Errorf("group %s partition %d: committed %+v, want at least %d", group, p, o, off+1)
		}
	}
}

// runScript writes a peer's script to a file and runs it with the
// interpreter, returning its stdout.
func runScript(t *testing.T, interpreter, script string, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "roundtrip")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	return runPeer(t, ctx, "", interpreter, append([]string{path}, args...)...)
}

func startRoundTripBroker(t *testing.T, topic string) string {
	t.Helper()
	b := testutil.StartBroker(t, broker.Config{
		GroupInitialRebalanceDelay: -1,
		OffsetsTopicPartitions:     3, TransactionStateTopicPartitions: 3,
	})
	createTopic(t, newAdmin(t, b.Addr()), topic, roundTripPartitions, nil)
	return b.Addr()
}

// confluentRoundTrip is the confluent-kafka-python side of the round trip.
const confluentRoundTrip = `
import json, sys, time
from confluent_kafka import Consumer, Producer

bootstrap, topic, group, txn_id = sys.argv[1:5]
PLAIN, TXN, PARTS = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
err = lambda e: print("error:", e, file=sys.stderr)

p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "error_cb": err})
for i in range(PLAIN):
    key = None if i % 5 == 0 else ("key-%d" % (i % 4)).encode()
    p.produce(topic, value=("value %d" % i).encode(), key=key, partition=i % PARTS,
              headers=[("origin", b"confluent-kafka")])
if p.flush(60) != 0:
    sys.exit("idempotent producer: records left unsent")

t = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, "error_cb": err})
t.init_transactions(60)
for outcome in ("committed", "aborted"):
    t.begin_transaction()
    for i in range(TXN):
        t.produce(topic, value=("%s %d" % (outcome, i)).encode(), key=b"txn", partition=i % PARTS)
    if outcome == "committed":
        t.commit_transaction(60)
    else:
        t.flush(60)  # the records reach the log before the abort marker
        t.abort_transaction(60)

c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
              "isolation.level": "read_committed", "enable.auto.commit": False, "error_cb": err})
c.subscribe([topic])
got, deadline = [], time.time() + 90
while len(got) < PLAIN + TXN and time.time() < deadline:
    m = c.poll(1.0)
    if m is None:
        continue
    if m.error():
        sys.exit("consume: %s" % m.error())
    c.commit(message=m, asynchronous=False)
    headers = []
    for k, v in m.headers() or []:
        headers += [k, v.decode()]
    got.append({"partition": m.partition(), "offset": m.offset(),
                "key": None if m.key() is None else m.key().decode(),
                "payload": m.value().decode(), "headers": headers})
c.close()
for r in got:
    print(json.dumps(r))
`

// TestConfluentKafkaRoundTrip: librdkafka's idempotent and transactional
// producers and its group consumer under read_committed.
func TestConfluentKafkaRoundTrip(t *testing.T) {
	python := pythonPeers(t)
	const topic, group = "confluent-roundtrip", "confluent-roundtrip-group"
	addr := startRoundTripBroker(t, topic)
	out := runScript(t, python, confluentRoundTrip, addr, topic, group, "confluent-roundtrip-txn",
		fmt.Sprint(roundTripPlain), fmt.Sprint(roundTripTxn), fmt.Sprint(roundTripPartitions))
	checkRoundTrip(t, addr, topic, group, "confluent-kafka", out)
}

// kafkajsRoundTrip is the kafkajs side of the round trip.
const kafkajsRoundTrip = `
const [kafkajs, bootstrap, topic, group, txnId, plain, txn, parts] = process.argv.slice(2);
const { Kafka, Partitioners, logLevel } = require(kafkajs);
const PLAIN = Number(plain), TXN = Number(txn), PARTS = Number(parts);

const kafka = new Kafka({ clientId: "runnel-interop", brokers: [bootstrap], logLevel: logLevel.WARN });
const partitioner = Partitioners.DefaultPartitioner;

async function main() {
  const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: partitioner });
  await p.connect();
  const messages = [];
  for (let i = 0; i < PLAIN; i++) {
    messages.push({ partition: i % PARTS, key: i % 5 === 0 ? null : "key-" + (i % 4),
                    value: "value " + i, headers: { origin: "kafkajs" } });
  }
  await p.send({ topic, acks: -1, messages });
  await p.disconnect();

  const t = kafka.producer({ transactionalId: txnId, idempotent: true, maxInFlightRequests: 1, createPartitioner: partitioner });
  await t.connect();
  for (const outcome of ["committed", "aborted"]) {
    const tx = await t.transaction();
    const ms = [];
    for (let i = 0; i < TXN; i++) ms.push({ partition: i % PARTS, key: "txn", value: outcome + " " + i });
    await tx.send({ topic, messages: ms });
    if (outcome === "committed") await tx.commit(); else await tx.abort();
  }
  await t.disconnect();

  const c = kafka.consumer({ groupId: group, readUncommitted: false });
  await c.connect();
  await c.subscribe({ topic, fromBeginning: true });
  const got = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("read " + got.length + " records in time")), 90000);
    c.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        await c.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
        const headers = [];
        for (const [k, v] of Object.entries(message.headers || {})) headers.push(k, v.toString());
        got.push({ partition, offset: Number(message.offset),
                   key: message.key === null ? null : message.key.toString(),
                   payload: message.value.toString(), headers });
        if (got.length >= PLAIN + TXN) { clearTimeout(timer); resolve(); }
      },
    }).catch(reject);
  });
  await c.disconnect();
  for (const r of got) console.log(JSON.stringify(r));
}

main().catch((e) => { console.error(e); process.exit(1); });
`

// nodePeers returns node and the kafkajs module scripts/fetch-node-peers.sh
// installs, or skips the test.
func nodePeers(t *testing.T) (node, kafkajs string) {
	t.Helper()
	dir := os.Getenv("RUNNEL_NODE_PEERS")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			missingPeer(t, "no home directory for the Node peers: %v", err)
		}
		dir = filepath.Join(home, ".cache", "runnel", "node-peers")
	}
	if _, err := os.Stat(filepath.Join(dir, "VERSION")); err != nil {
		missingPeer(t, "kafkajs is not installed in %s (run scripts/fetch-node-peers.sh)", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missingPeer(t, "node is not installed: %v", err)
	}
	return node, filepath.Join(dir, "node_modules", "kafkajs")
}

// TestKafkajsRoundTrip: kafkajs' idempotent and transactional producers
// and its group consumer under read_committed.
func TestKafkajsRoundTrip(t *testing.T) {
	node, kafkajs := nodePeers(t)
	const topic, group = "kafkajs-roundtrip", "kafkajs-roundtrip-group"
	addr := startRoundTripBroker(t, topic)
	out := runScript(t, node, kafkajsRoundTrip, kafkajs, addr, topic, group, "kafkajs-roundtrip-txn",
		fmt.Sprint(roundTripPlain), fmt.Sprint(roundTripTxn), fmt.Sprint(roundTripPartitions))
	checkRoundTrip(t, addr, topic, group, "kafkajs", out)
}
