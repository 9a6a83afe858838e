package main

import (
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/stream/serde"
)

// TestConsumeAvro prints Avro values written in Confluent's wire format
// as Avro JSON, with the schema from the broker's registry.
func TestConsumeAvro(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{RegistryListen: "127.0.0.1:0"})
	addr, url := b.Addr(), "http://"+b.RegistryAddr()
	mustCLI(t, addr, "", "topics", "create", "orders")
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	s, err := serde.AvroGeneric(cl, `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"note","type":["null","string"]},`+
		`{"name":"a","type":"int","default":0},{"name":"b","type":"int","default":0},{"name":"c","type":"bytes","default":""},`+
		`{"name":"m","type":{"type":"map","values":"int"},"default":{}}]}`,
		serde.AvroSubject("orders-value"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for _, v := range []map[string]any{
		{"id": int64(1), "note": nil, "a": int32(1), "b": int32(2), "c": []byte{0, 'x', 0xff}, "m": map[string]any{}},
		{"id": int64(2), "note": goavro.Union("string", "gift"), "a": int32(3), "b": int32(4), "c": []byte{}, "m": map[string]any{"z": int32(1), "a": int32(2)}},
	} {
		bs, err := s.Serialize(v)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: "orders", Value: bs})
	}
	recs = append(recs, &kgo.Record{Topic: "orders", Value: []byte("plain")})
	produceRecords(t, addr, recs...)

	r := mustCLI(t, addr, "", "consume", "orders", "--from-beginning", "--max-messages", "2", "--timeout", "30s",
		"--value-format", "avro", "--schema-registry-url", url)
	// Fields in schema order, map keys sorted, bytes as code points: the
	// same value prints the same every time.
	want := `{"id":1,"note":null,"a":1,"b":2,"c":"\u0000xÿ","m":{}}` + "\n" +
		`{"id":2,"note":{"string":"gift"},"a":3,"b":4,"c":"","m":{"a":2,"z":1}}` + "\n"
	if r.stdout != want {
		t.Fatalf("printed %q, want %q", r.stdout, want)
	}
	// The third record is not Avro: an error that names the flag.
	r = cli(t, addr, "", "consume", "orders", "--offset", "2", "--max-messages", "1", "--timeout", "30s",
		"--value-format", "avro", "--schema-registry-url", url)
	if r.code == 0 || !strings.Contains(r.stderr, "--value-format") {
		t.Fatalf("non-Avro record: exit %d stderr %q", r.code, r.stderr)
	}
	// avro without a registry is a usage error.
	r = cli(t, addr, "", "consume", "orders", "--value-format", "avro")
	if r.code == 0 || !strings.Contains(r.stderr, "--schema-registry-url") {
		t.Fatalf("avro without a registry: exit %d stderr %q", r.code, r.stderr)
	}
}

// TestConsumeAvroReferences prints values whose writer schema references
// a type registered under another subject.
func TestConsumeAvroReferences(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{RegistryListen: "127.0.0.1:0"})
	addr, url := b.Addr(), "http://"+b.RegistryAddr()
	mustCLI(t, addr, "", "topics", "create", "customers")
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const address = `{"type":"record","name":"Address","namespace":"shop","fields":[{"name":"zip","type":"string"}]}`
	if _, err := cl.CreateSchema(ctx, "shop.Address", sr.Schema{Schema: address}); err != nil {
		t.Fatal(err)
	}
	ss, err := cl.CreateSchema(ctx, "customers-value", sr.Schema{
		Schema:     `{"type":"record","name":"Customer","namespace":"shop","fields":[{"name":"name","type":"string"},{"name":"home","type":"shop.Address"}]}`,
		References: []sr.SchemaReference{{Name: "shop.Address", Subject: "shop.Address", Version: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(`{"type":"record","name":"Customer","namespace":"shop","fields":[{"name":"name","type":"string"},{"name":"home","type":` + address + `}]}`)
	if err != nil {
		t.Fatal(err)
	}
	v, err := codec.BinaryFromNative([]byte{0, 0, 0, 0, byte(ss.ID)}, map[string]any{"name": "ann", "home": map[string]any{"zip": "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	produceRecords(t, addr, &kgo.Record{Topic: "customers", Value: v})
	r := mustCLI(t, addr, "", "consume", "customers", "--from-beginning", "--max-messages", "1", "--timeout", "30s",
		"--value-format", "avro", "--schema-registry-url", url)
	if want := `{"name":"ann","home":{"zip":"1000"}}` + "\n"; r.stdout != want {
		t.Fatalf("printed %q, want %q", r.stdout, want)
	}
}
