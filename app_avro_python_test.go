package runnel_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
)

// confluentAvroPeer produces or consumes Avro with Confluent's Python
// serializers: "produce BOOTSTRAP URL TOPIC N" writes N orders and prints
// them, "consume BOOTSTRAP URL TOPIC N" reads N values and prints them,
// one JSON object a line.
const confluentAvroPeer = `
import json, sys
from confluent_kafka import Producer, Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer, AvroDeserializer
from confluent_kafka.serialization import SerializationContext, MessageField

mode, bootstrap, url, topic, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
client = SchemaRegistryClient({"url": url})
if mode == "produce":
    schema = {"type": "record", "name": "Order", "namespace": "shop", "fields": [
        {"name": "id", "type": "int"},
        {"name": "item", "type": "string"},
        {"name": "qty", "type": "int"},
        {"name": "price", "type": "double"},
        {"name": "note", "type": ["null", "string"], "default": None}]}
    ser = AvroSerializer(client, json.dumps(schema))
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(n):
        v = {"id": i, "item": "item-%d" % i, "qty": i + 1, "price": 0.5 * i, "note": None if i % 2 else "n%d" % i}
        p.produce(topic, key=str(i).encode(), value=ser(v, SerializationContext(topic, MessageField.VALUE)))
        print(json.dumps(v))
    if p.flush(30) != 0:
        raise SystemExit("records left unsent")
else:
    de = AvroDeserializer(client)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "py-avro-reader", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = 0
    while got < n:
        m = c.poll(60)
        if m is None:
            raise SystemExit("no record within 60s")
        if m.error():
            raise SystemExit(str(m.error()))
        print(json.dumps(de(m.value(), SerializationContext(topic, MessageField.VALUE))))
        got += 1
    c.close()
`

// pythonPeer returns the Python of scripts/fetch-python-peers.sh's
// virtual environment with Confluent's Avro serializers, or skips.
func pythonPeer(t *testing.T) string {
	t.Helper()
	venv := os.Getenv("RUNNEL_PYTHON_PEERS")
	if venv == "" {
		home, _ := os.UserHomeDir()
		venv = filepath.Join(home, ".cache", "runnel", "python-peers")
	}
	py := filepath.Join(venv, "bin", "python")
	if err := exec.Command(py, "-c", "import confluent_kafka.schema_registry.avro").Run(); err != nil {
		msg := fmt.Sprintf("confluent-kafka with its avro extras is not installed in %s (run scripts/fetch-python-peers.sh)", venv)
		if requirePeers() {
			t.Fatal(msg)
		}
		t.Skip(msg + "; set RUNNEL_REQUIRE_PEERS=1 to fail instead")
	}
	return py
}

// TestAppAvroConfluentPython: Confluent's Python AvroSerializer writes
// orders; a Runnel app reads them with serde.AvroGeneric, computes a total
// and writes a new Avro record type; Confluent's Python AvroDeserializer
// reads the output; the values agree.
func TestAppAvroConfluentPython(t *testing.T) {
	py := pythonPeer(t)
	b := testutil.StartBroker(t, broker.Config{RegistryListen: "127.0.0.1:0", GroupInitialRebalanceDelay: -1,
		OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
	url := "http://" + b.RegistryAddr()
	createTopics(t, b.Addr(), 1, "py-orders", "py-totals")
	const n = 25
	python := func(args ...string) []map[string]any {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, py, append([]string{"-c", confluentAvroPeer}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("python %s: %v\n%s", args[0], err, stderr.String())
		}
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			var v map[string]any
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Fatalf("python printed %q: %v", line, err)
			}
			out = append(out, v)
		}
		return out
	}
	orders := python("produce", b.Addr(), url, "py-orders", fmt.Sprint(n))

	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	// The reader schema is the producer's without the note: Avro
	// resolution drops the field.
	in, err := serde.AvroGeneric(cl, `{"type":"record","name":"Order","namespace":"shop","fields":[
		{"name":"id","type":"int"},{"name":"item","type":"string"},{"name":"qty","type":"int"},{"name":"price","type":"double"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := serde.AvroGeneric(cl, `{"type":"record","name":"Total","namespace":"shop","fields":[
		{"name":"id","type":"long"},{"name":"item","type":"string"},{"name":"total","type":"double"}]}`,
		serde.AvroSubject("py-totals-value"))
	if err != nil {
		t.Fatal(err)
	}
	topo := buildTopology(t, func(sb *stream.Builder) {
		s := stream.From(sb, "py-orders", serde.Bytes, in)
		stream.MapValues(s, func(o map[string]any) map[string]any {
			return map[string]any{
				"id":    int64(o["id"].(int32)),
				"item":  o["item"],
				"total": float64(o["qty"].(int32)) * o["price"].(float64),
			}
		}).To("py-totals", stream.WithSerdes(serde.Bytes, out))
	})
	runApp(t, topo, nil, runnel.ApplicationID("avro-python"), runnel.Brokers(b.Addr()), runnel.StateDir(t.TempDir()))

	totals := python("consume", b.Addr(), url, "py-totals", fmt.Sprint(n))
	for i, o := range orders {
		want := map[string]any{"id": o["id"], "item": o["item"], "total": o["qty"].(float64) * o["price"].(float64)}
		if !reflect.DeepEqual(totals[i], want) {
			t.Fatalf("total %d: Python read %v, want %v", i, totals[i], want)
		}
	}
}
