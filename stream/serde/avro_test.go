package serde_test

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"runtime/debug"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/registry/registrytest"
	"github.com/runnel-dev/runnel/stream/serde"
)

// newRegistry serves an in-memory registry over HTTP and returns a client.
func newRegistry(t testing.TB) *sr.Client { return registrytest.Client(t) }

const (
	orderV1 = `{"type":"record","name":"Order","namespace":"shop","fields":[
		{"name":"id","type":"int"},
		{"name":"item","type":"string"},
		{"name":"note","type":["null","string"],"default":null},
		{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED"]}}]}`
	// orderV2 reads v1 data: id promoted to long, note dropped, qty added
	// with a default, and an enum that lacks SHIPPED but has a default.
	orderV2 = `{"type":"record","name":"Order","namespace":"shop","fields":[
		{"name":"id","type":"long"},
		{"name":"item","type":"string"},
		{"name":"qty","type":"int","default":1},
		{"name":"tags","type":["null",{"type":"array","items":"string"}],"default":null},
		{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","OTHER"],"default":"OTHER"}}]}`
)

func TestAvroRoundTrip(t *testing.T) {
	cl := newRegistry(t)
	s, err := serde.AvroGeneric(cl, orderV1, serde.AvroSubject("orders-value"))
	if err != nil {
		t.Fatal(err)
	}
	v := map[string]any{"id": int32(7), "item": "pen", "note": goavro.Union("string", "gift"), "status": "PAID"}
	b, err := s.Serialize(v)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 || binary.BigEndian.Uint32(b[1:5]) != 1 {
		t.Fatalf("header % x, want magic 0 and id 1", b[:5])
	}
	got, err := s.Deserialize(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("round trip: %v, want %v", got, v)
	}
	// The schema is registered under the subject.
	if ss, err := cl.SchemaByVersion(context.Background(), "orders-value", 1); err != nil || ss.ID != 1 {
		t.Fatalf("registered: %+v, %v", ss, err)
	}
}

// TestAvroResolution reads data of an older schema with a newer one.
func TestAvroResolution(t *testing.T) {
	cl := newRegistry(t)
	w, err := serde.AvroGeneric(cl, orderV1, serde.AvroSubject("orders-value"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := serde.AvroGeneric(cl, orderV2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.Serialize(map[string]any{"id": int32(7), "item": "pen", "note": nil, "status": "SHIPPED"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Deserialize(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": int64(7), "item": "pen", "qty": int32(1), "tags": nil, "status": "OTHER"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("resolved: %v, want %v", got, want)
	}
}

// TestAvroBadInput: bytes that are not a value of a known schema are
// errors, never panics.
func TestAvroBadInput(t *testing.T) {
	cl := newRegistry(t)
	s, err := serde.AvroGeneric(cl, orderV1, serde.AvroSubject("orders-value"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := s.Serialize(map[string]any{"id": int32(1), "item": "x", "note": nil, "status": "NEW"})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"empty":       {},
		"short":       {0, 0, 0},
		"magic":       append([]byte{1}, good[1:]...),
		"unknown id":  append([]byte{0, 0, 0, 0, 99}, good[5:]...),
		"truncated":   good[:len(good)-1],
		"extra bytes": append(append([]byte{}, good...), 0),
	} {
		if _, err := s.Deserialize(b); err == nil {
			t.Errorf("%s: decoded % x", name, b)
		}
	}
	if _, err := s.Deserialize([]byte{1, 0, 0, 0, 1}); !errors.Is(err, serde.ErrAvroFormat) {
		t.Errorf("bad magic: %v, want ErrAvroFormat", err)
	}
	// Without a subject there is nothing to register under.
	ns, _ := serde.AvroGeneric(cl, orderV1)
	if _, err := ns.Serialize(map[string]any{"id": int32(1), "item": "x", "note": nil, "status": "NEW"}); err == nil {
		t.Error("serialized without a subject")
	}
	// Without auto-registration an unknown schema is an error.
	lookup, _ := serde.AvroGeneric(cl, orderV2, serde.AvroSubject("orders-value"), serde.AvroAutoRegister(false))
	if _, err := lookup.Serialize(map[string]any{}); err == nil {
		t.Error("serialized a schema the subject does not have, with auto-registration off")
	}
	if _, err := serde.AvroGeneric(cl, `"string"`); err == nil {
		t.Error("accepted a schema that is not a record")
	}
}

// FuzzAvroDeserialize feeds arbitrary bytes after a valid header to the
// decoder: an error or a value, never a panic.
func FuzzAvroDeserialize(f *testing.F) {
	cl := newRegistry(f)
	s, err := serde.AvroGeneric(cl, orderV1, serde.AvroSubject("orders-value"))
	if err != nil {
		f.Fatal(err)
	}
	good, err := s.Serialize(map[string]any{"id": int32(1), "item": "x", "note": goavro.Union("string", "n"), "status": "NEW"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:5])
	f.Add([]byte{0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := s.Deserialize(b)
		if err == nil && v == nil {
			t.Fatal("no value and no error")
		}
	})
}

// TestAvroHugeBlockCount: a few bytes that claim an array or map of 2^31
// items are an error, not an allocation of gigabytes (goavro sizes what
// it allocates by the count it reads): the typed serde, whose direct path
// hands data it does not take to goavro, and the generic one.
func TestAvroHugeBlockCount(t *testing.T) {
	cl := newRegistry(t)
	type tagged struct {
		Tags  []string          `avro:"tags"`
		Attrs map[string]string `avro:"attrs"`
		Gaps  []*string         `avro:"gaps"`
	}
	typed, err := serde.Avro[tagged](cl, serde.AvroSubject("tagged-value"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := typed.Serialize(tagged{Tags: []string{"a"}, Attrs: map[string]string{}, Gaps: []*string{nil}})
	if err != nil {
		t.Fatal(err)
	}
	schema, _ := serde.AvroSchemaOf[tagged]("")
	generic, err := serde.AvroGeneric(cl, schema, serde.AvroSubject("tagged-value"))
	if err != nil {
		t.Fatal(err)
	}
	huge := []byte{0xfe, 0xff, 0xff, 0xff, 0x0f} // 2^31-1, zig-zag
	for name, body := range map[string][]byte{
		"array":           append(append([]byte{}, huge...), 0, 0, 0),
		"map":             append(append([]byte{0}, huge...), 0, 0),
		"array of unions": append(append([]byte{0, 0}, huge...), 0),
	} {
		b := append(append([]byte{}, good[:5]...), body...)
		if _, err := typed.Deserialize(b); err == nil {
			t.Errorf("%s: typed serde decoded % x", name, b)
		}
		if _, err := generic.Deserialize(b); err == nil {
			t.Errorf("%s: generic serde decoded % x", name, b)
		}
	}
}

// TestAvroDeepNesting: data of a recursive type nested a million levels
// deep (2 MB) is an error, not a stack overflow that kills the process
// (the stack is held to 64 MB here, so that the test fails the same way
// on any machine); a list a thousand long reads back.
func TestAvroDeepNesting(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(64 << 20))
	cl := newRegistry(t)
	type node struct {
		Value int64 `avro:"value"`
		Next  *node `avro:"next"`
	}
	s, err := serde.Avro[node](cl, serde.AvroTopic("nodes"))
	if err != nil {
		t.Fatal(err)
	}
	var list *node
	for i := range 1000 {
		list = &node{int64(i), list}
	}
	b, err := s.Serialize(*list)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Deserialize(b)
	if err != nil || !reflect.DeepEqual(got, *list) {
		t.Fatalf("a list of 1000: %v", err)
	}

	deep := append([]byte{}, b[:5]...)
	for range 1 << 20 {
		deep = append(deep, 2, 2) // value 1, next: the node branch
	}
	deep = append(deep, 2, 0)
	if _, err := s.Deserialize(deep); err == nil {
		t.Fatal("read a million levels")
	}
	g, err := serde.AvroGeneric(cl, `{"type":"record","name":"node","fields":[{"name":"value","type":"long"},{"name":"next","type":["null","node"]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Deserialize(deep); err == nil {
		t.Fatal("the generic serde read a million levels")
	}
}
