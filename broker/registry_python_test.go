package broker_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// confluentAvroProducer uses Confluent's own Python registry client and
// AvroSerializer against the broker's registry: it checks the API answers
// as the client expects (register, look up, a refused incompatible change,
// a compatibility check, soft and permanent delete), then produces Avro
// records in Confluent's wire format and prints the values it sent as
// JSON lines.
const confluentAvroProducer = `
import json, sys
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient, Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import SerializationContext, MessageField

bootstrap, url, topic = sys.argv[1], sys.argv[2], sys.argv[3]
schema = {"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "long"},
    {"name": "item", "type": "string"},
    {"name": "qty", "type": "int"},
    {"name": "price", "type": "double"},
    {"name": "note", "type": ["null", "string"], "default": None},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
]}
client = SchemaRegistryClient({"url": url})

# The registry API, as Confluent's client sees it.
scratch = "py-scratch-value"
sid = client.register_schema(scratch, Schema(json.dumps(schema), "AVRO"))
found = client.lookup_schema(scratch, Schema(json.dumps(schema), "AVRO"))
assert found.schema_id == sid and found.version == 1, found
bad = dict(schema, fields=schema["fields"] + [{"name": "required", "type": "int"}])
assert not client.test_compatibility(scratch, Schema(json.dumps(bad), "AVRO"))
try:
    client.register_schema(scratch, Schema(json.dumps(bad), "AVRO"))
    raise SystemExit("an incompatible schema was registered")
except SchemaRegistryError as e:
    assert e.http_status_code == 409, (e.http_status_code, e.error_code)
assert client.get_latest_version(scratch).schema_id == sid
assert client.delete_subject(scratch) == [1]
assert client.delete_subject(scratch, permanent=True) == [1]
try:
    # A new client: the first one caches the latest version.
    SchemaRegistryClient({"url": url}).get_latest_version(scratch)
    raise SystemExit("a deleted subject was found")
except SchemaRegistryError as e:
    assert e.error_code == 40401, e.error_code

# Evolve: a compatible schema is a new version with a new id; the same
# schema under another subject keeps its id; versions, config, mode and
# contexts as the client reads them.
evo, evo2 = "py-evolve-value", "py-evolve2-value"
v1 = client.register_schema(evo, Schema(json.dumps(schema), "AVRO"))
assert client.register_schema(evo2, Schema(json.dumps(schema), "AVRO")) == v1
wider = dict(schema, fields=schema["fields"] + [{"name": "coupon", "type": ["null", "string"], "default": None}])
assert client.test_compatibility(evo, Schema(json.dumps(wider), "AVRO"))
v2 = client.register_schema_full_response(evo, Schema(json.dumps(wider), "AVRO"), normalize_schemas=True)
assert v2.schema_id != v1 and v2.version == 2, v2
assert client.get_versions(evo) == [1, 2]
assert client.get_version(evo, 1).schema_id == v1
assert json.loads(client.get_schema(v2.schema_id).schema_str)["name"] == "shop.Order"  # normalized: full name
assert sorted(client.get_subjects_by_schema_id(v1)) == [evo, evo2]
client.set_compatibility(evo, "FULL")
assert client.get_compatibility(evo) == "FULL"
assert client.update_mode(evo, "READONLY") == "READONLY" and client.get_mode(evo) == "READONLY"
try:
    client.register_schema(evo, Schema(json.dumps(dict(wider, doc="x", fields=wider["fields"][:-1])), "AVRO"))
    raise SystemExit("a read-only subject took a schema")
except SchemaRegistryError as e:
    assert e.error_code == 42205, e.error_code
assert client.delete_mode(evo) == "READONLY"
assert client.get_contexts() == ["."]
assert client.delete_version(evo, 2) == 2
assert client.get_versions(evo) == [1]
for s in (evo, evo2):
    client.delete_subject(s)
    client.delete_subject(s, permanent=True)

ser = AvroSerializer(client, json.dumps(schema))
p = Producer({"bootstrap.servers": bootstrap})
for i in range(20):
    v = {"id": i, "item": "item-%d" % i, "qty": i * 3, "price": i * 1.5,
         "note": None if i % 2 else "n%d" % i, "tags": ["t%d" % j for j in range(i % 3)]}
    p.produce(topic, value=ser(v, SerializationContext(topic, MessageField.VALUE)))
    print(json.dumps(v))
p.flush(30)
`

// TestRegistryConfluentPythonSerializer has Confluent's Python
// AvroSerializer write records through the broker's registry, and a Go
// reader decode them with the schema the id in each record names: the
// values must agree.
func TestRegistryConfluentPythonSerializer(t *testing.T) {
	py := pythonPeers(t)
	if err := exec.Command(py, "-c", "import confluent_kafka.schema_registry.avro").Run(); err != nil {
		missingPeer(t, "confluent-kafka's avro and schemaregistry extras are not installed (run scripts/fetch-python-peers.sh --force)")
	}
	b := testutil.StartBroker(t, broker.Config{RegistryListen: "127.0.0.1:0"})
	createTopic(t, newAdmin(t, b.Addr()), "py-orders", 1, nil)
	url := "http://" + b.RegistryAddr()

	ctx := testContext(t)
	cmd := exec.CommandContext(ctx, py, "-c", confluentAvroProducer, b.Addr(), url, "py-orders")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("python producer: %v\n%s", err, stderr.String())
	}
	var want []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("python printed %q: %v", line, err)
		}
		want = append(want, v)
	}

	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	codecs := map[uint32]*goavro.Codec{}
	recs := consumeAll(t, b.Addr(), "py-orders", len(want))
	for i, r := range recs {
		if len(r.Value) < 5 || r.Value[0] != 0 {
			t.Fatalf("record %d is not in Confluent's wire format: % x", i, r.Value)
		}
		id := binary.BigEndian.Uint32(r.Value[1:5])
		codec := codecs[id]
		if codec == nil {
			s, err := cl.SchemaByID(context.Background(), int(id))
			if err != nil {
				t.Fatalf("schema %d named by record %d: %v", id, i, err)
			}
			if codec, err = goavro.NewCodec(s.Schema); err != nil {
				t.Fatal(err)
			}
			codecs[id] = codec
		}
		native, rest, err := codec.NativeFromBinary(r.Value[5:])
		if err != nil || len(rest) != 0 {
			t.Fatalf("record %d: %v (%d bytes left)", i, err, len(rest))
		}
		// Compare as JSON, the form the Python side printed.
		textual, err := codec.TextualFromNative(nil, native)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(textual, &got); err != nil {
			t.Fatal(err)
		}
		// goavro writes a union value as {"string": "..."}.
		if n, ok := got["note"].(map[string]any); ok {
			got["note"] = n["string"]
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("record %d: Go read %v, Python wrote %v", i, got, want[i])
		}
	}
	subs, err := cl.Subjects(context.Background())
	if err != nil || len(subs) != 1 || subs[0] != "py-orders-value" {
		t.Fatalf("subjects: %v, %v (the serializer registers under TopicNameStrategy)", subs, err)
	}
}
