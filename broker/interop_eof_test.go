package broker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"

	"github.com/runnel-dev/runnel/broker"
)

// Reading to the end: librdkafka's consumers (kcat -e, confluent-kafka's
// enable.partition.eof) stop when every partition reports its end, which
// they learn from a fetch that returns no records. Such a fetch must carry
// an empty record set, never a null one: librdkafka rejects a null set as a
// protocol parse failure and retries forever. A partition that never had a
// record, and one whose records were all read, both count.

// eofTimeout bounds one read to the end; a peer that never sees the end
// of a partition runs into it.
const eofTimeout = 45 * time.Second

// eofTopic makes a topic of three partitions, two with records and one
// empty, and returns the records.
func eofTopic(t *testing.T, b *broker.Broker, topic string) []peerRecord {
	t.Helper()
	createTopic(t, newAdmin(t, b.Addr()), topic, 3, nil)
	return produceKgo(t, b.Addr(), topic, textRecords(12, 2, "eof"))
}

// runToEnd runs a peer that must exit by itself once at the end, and
// returns its stdout. It fails when the peer does not exit within
// eofTimeout or logs a protocol parse failure.
func runToEnd(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eofTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	shown := slices.Clone(args)
	for i, a := range shown {
		if strings.Contains(a, "\n") {
			shown[i] = "SCRIPT"
		}
	}
	t.Logf("%s %s: %v", filepath.Base(name), strings.Join(shown, " "), time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		t.Fatalf("%s did not reach the end within %v\nstderr:\n%s", filepath.Base(name), eofTimeout, tail(stderr.String(), 20))
	}
	if err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", filepath.Base(name), err, tail(stderr.String(), 20))
	}
	if s := stderr.String(); strings.Contains(s, "parse failure") || strings.Contains(s, "MessageSetSize") {
		t.Fatalf("%s reported a malformed response:\n%s", filepath.Base(name), tail(s, 20))
	}
	return stdout.String()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// parseKcatJSON reads kcat -J's lines into records.
func parseKcatJSON(t *testing.T, out string) []peerRecord {
	t.Helper()
	var got []peerRecord
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m kcatMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("peer printed %q: %v", sc.Text(), err)
		}
		r := peerRecord{Partition: m.Partition, Offset: m.Offset}
		if m.Key != nil {
			r.Key = []byte(*m.Key)
		}
		if m.Payload != nil {
			r.Value = []byte(*m.Payload)
		}
		for i := 0; i+1 < len(m.Headers); i += 2 {
			r.Headers = append(r.Headers, peerHeader{m.Headers[i], []byte(m.Headers[i+1])})
		}
		got = append(got, r)
	}
	return got
}

// TestKcatReadsToEnd reads a topic to its end with kcat -e, every
// partition assigned, and exits by itself with every record read.
func TestKcatReadsToEnd(t *testing.T) {
	bin := kcat(t)
	b := testutil.StartBroker(t, broker.Config{})
	want := eofTopic(t, b, "kcat-eof")
	out := runToEnd(t, bin, "-C", "-b", b.Addr(), "-t", "kcat-eof", "-o", "beginning", "-e", "-J")
	checkRecords(t, want, parseKcatJSON(t, out))
}

// TestKcatGroupReadsToEnd reads a topic to its end with kcat -G (a
// consumer group member) and -e, and exits by itself with every record
// read.
func TestKcatGroupReadsToEnd(t *testing.T) {
	bin := kcat(t)
	b := testutil.StartBroker(t, broker.Config{})
	want := eofTopic(t, b, "kcat-group-eof")
	out := runToEnd(t, bin, "-b", b.Addr(), "-G", "kcat-eof-group", "-o", "beginning", "-e", "-J", "kcat-group-eof")
	checkRecords(t, want, parseKcatJSON(t, out))
}

// pythonPeers returns the Python of the virtual environment
// scripts/fetch-python-peers.sh fills, or skips the test.
func pythonPeers(t *testing.T) string {
	t.Helper()
	venv := os.Getenv("RUNNEL_PYTHON_PEERS")
	if venv == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			missingPeer(t, "no home directory for the Python peers: %v", err)
		}
		venv = filepath.Join(home, ".cache", "runnel", "python-peers")
	}
	if _, err := os.Stat(filepath.Join(venv, "VERSION")); err != nil {
		missingPeer(t, "confluent-kafka is not installed in %s (run scripts/fetch-python-peers.sh)", venv)
	}
	return filepath.Join(venv, "bin", "python")
}

// confluentToEnd is a confluent-kafka (librdkafka) consumer that reads a
// topic to its end, in a group or with every partition assigned, and
// prints each record as kcat -J does.
const confluentToEnd = `
import json, sys
from confluent_kafka import Consumer, KafkaError, TopicPartition, OFFSET_BEGINNING

bootstrap, topic, group, mode = sys.argv[1:5]
c = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "auto.offset.reset": "earliest",
    "enable.partition.eof": True,
    "enable.auto.commit": False,
    "error_cb": lambda e: print("error:", e, file=sys.stderr),
})
assigned = set()
if mode == "assign":
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    assigned = set(parts)
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
else:
    c.subscribe([topic], on_assign=lambda _, ps: assigned.update(p.partition for p in ps))
at_end = set()
while not assigned or not assigned <= at_end:
    m = c.poll(1.0)
    if m is None:
        continue
    if m.error():
        if m.error().code() == KafkaError._PARTITION_EOF:
            at_end.add(m.partition())
            continue
        sys.exit("consume: %s" % m.error())
    headers = []
    for k, v in m.headers() or []:
        headers += [k, v.decode()]
    print(json.dumps({
        "partition": m.partition(),
        "offset": m.offset(),
        "key": None if m.key() is None else m.key().decode(),
        "payload": None if m.value() is None else m.value().decode(),
        "headers": headers,
    }))
c.close()
`

// TestConfluentKafkaReadsToEnd reads a topic to its end with
// confluent-kafka-python (the current librdkafka), with partitions
// assigned and as a group member, each stopping at every partition's
// end of partition event.
func TestConfluentKafkaReadsToEnd(t *testing.T) {
	python := pythonPeers(t)
	b := testutil.StartBroker(t, broker.Config{})
	want := eofTopic(t, b, "confluent-eof")
	for _, mode := range []string{"assign", "group"} {
		t.Run(mode, func(t *testing.T) {
			out := runToEnd(t, python, "-c", confluentToEnd, b.Addr(), "confluent-eof", "confluent-eof-"+mode, mode)
			checkRecords(t, want, parseKcatJSON(t, out))
		})
	}
}
