package serde_test

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/stream/serde"
)

// TestAvroWriterSchemaWithReferences reads records whose writer schema
// uses a type from another subject (a schema reference, as Confluent's
// serializers register nested types): the serde loads the referenced
// schema by subject and version and resolves the writer's schema, which
// differs from its own, to the reader's.
func TestAvroWriterSchemaWithReferences(t *testing.T) {
	ctx := context.Background()
	cl := newRegistry(t)
	const address = `{"type":"record","name":"Address","namespace":"shop","fields":[
		{"name":"street","type":"string"},{"name":"zip","type":"string"}]}`
	if _, err := cl.CreateSchema(ctx, "shop.Address", sr.Schema{Schema: address}); err != nil {
		t.Fatal(err)
	}
	const customer = `{"type":"record","name":"Customer","namespace":"shop","fields":[
		{"name":"name","type":"string"},{"name":"home","type":"shop.Address"},
		{"name":"visits","type":"int"}]}`
	w, err := cl.CreateSchema(ctx, "customers-value", sr.Schema{Schema: customer,
		References: []sr.SchemaReference{{Name: "shop.Address", Subject: "shop.Address", Version: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	// What a writer with the referenced type inline puts on the wire.
	codec, err := goavro.NewCodec(`{"type":"record","name":"Customer","namespace":"shop","fields":[
		{"name":"name","type":"string"},
		{"name":"home","type":` + address + `},
		{"name":"visits","type":"int"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(w.ID))
	b, err = codec.BinaryFromNative(b, map[string]any{
		"name": "ann", "home": map[string]any{"street": "Main 1", "zip": "1000"}, "visits": int32(3)})
	if err != nil {
		t.Fatal(err)
	}

	// The reader: visits promoted to long, a field the writer lacks with
	// its default, the zip dropped.
	type home struct {
		Street string `avro:"street"`
	}
	type reader struct {
		Name   string `avro:"name"`
		Home   home   `avro:"home"`
		Visits int64  `avro:"visits"`
		Tier   string `avro:"tier"`
	}
	const readerSchema = `{"type":"record","name":"Customer","namespace":"shop","fields":[
		{"name":"name","type":"string"},
		{"name":"home","type":{"type":"record","name":"Address","fields":[{"name":"street","type":"string"}]}},
		{"name":"visits","type":"long"},
		{"name":"tier","type":"string","default":"basic"}]}`
	s, err := serde.Avro[reader](cl, serde.AvroSchema(readerSchema))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Deserialize(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := (reader{Name: "ann", Home: home{"Main 1"}, Visits: 3, Tier: "basic"}); got != want {
		t.Fatalf("read %+v, want %+v", got, want)
	}

	// A registry client that cannot load references by subject and
	// version gets a clear error, not a wrong value.
	g, err := serde.AvroGeneric(idOnly{cl}, readerSchema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Deserialize(b); err == nil {
		t.Fatal("decoded a schema with references without loading them")
	}
}

// idOnly is a registry client without SchemaByVersion.
type idOnly struct{ cl *sr.Client }

func (r idOnly) CreateSchema(ctx context.Context, subject string, s sr.Schema) (sr.SubjectSchema, error) {
	return r.cl.CreateSchema(ctx, subject, s)
}

func (r idOnly) LookupSchema(ctx context.Context, subject string, s sr.Schema) (sr.SubjectSchema, error) {
	return r.cl.LookupSchema(ctx, subject, s)
}

func (r idOnly) SchemaByID(ctx context.Context, id int) (sr.Schema, error) {
	return r.cl.SchemaByID(ctx, id)
}
