package serde_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/stream/serde"
)

// countingRegistry counts the calls an Avro serde makes to its registry.
type countingRegistry struct {
	cl                                *sr.Client
	creates, lookups, byID, byVersion atomic.Int64
}

func (c *countingRegistry) CreateSchema(ctx context.Context, subject string, s sr.Schema) (sr.SubjectSchema, error) {
	c.creates.Add(1)
	return c.cl.CreateSchema(ctx, subject, s)
}

func (c *countingRegistry) LookupSchema(ctx context.Context, subject string, s sr.Schema) (sr.SubjectSchema, error) {
	c.lookups.Add(1)
	return c.cl.LookupSchema(ctx, subject, s)
}

func (c *countingRegistry) SchemaByID(ctx context.Context, id int) (sr.Schema, error) {
	c.byID.Add(1)
	return c.cl.SchemaByID(ctx, id)
}

func (c *countingRegistry) SchemaByVersion(ctx context.Context, subject string, version int) (sr.SubjectSchema, error) {
	c.byVersion.Add(1)
	return c.cl.SchemaByVersion(ctx, subject, version)
}

func (c *countingRegistry) calls() [4]int64 {
	return [4]int64{c.creates.Load(), c.lookups.Load(), c.byID.Load(), c.byVersion.Load()}
}

// TestAvroSchemaIDCache: a serde asks the registry once for its own
// schema's id and once per writer id it reads, never on the records
// after: the hot path makes no HTTP call.
func TestAvroSchemaIDCache(t *testing.T) {
	reg := &countingRegistry{cl: newRegistry(t)}
	type line struct {
		SKU string `avro:"sku"`
		Qty int32  `avro:"qty"`
	}
	w, err := serde.Avro[line](reg, serde.AvroTopic("lines"))
	if err != nil {
		t.Fatal(err)
	}
	var written [][]byte
	for i := range 100 {
		b, err := w.Serialize(line{"pen", int32(i)})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := w.Deserialize(b); err != nil || got.Qty != int32(i) {
			t.Fatalf("record %d: %+v, %v", i, got, err)
		}
		written = append(written, b)
	}
	// One registration; its own id is known without asking for it.
	if got := reg.calls(); got != [4]int64{1, 0, 0, 0} {
		t.Fatalf("registry calls (create, lookup, by id, by version) = %v after 100 records, want [1 0 0 0]", got)
	}

	// A reader of another schema: one fetch of the writer's schema.
	rreg := &countingRegistry{cl: reg.cl}
	type wider struct {
		SKU  string `avro:"sku"`
		Qty  int64  `avro:"qty"`
		Note string `avro:"note"`
	}
	r, err := serde.Avro[wider](rreg, serde.AvroSchema(`{"type":"record","name":"line","fields":[
		{"name":"sku","type":"string"},{"name":"qty","type":"long"},{"name":"note","type":"string","default":"-"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range written {
		if got, err := r.Deserialize(b); err != nil || got != (wider{"pen", int64(i), "-"}) {
			t.Fatalf("record %d read with a wider schema: %+v, %v", i, got, err)
		}
	}
	if got := rreg.calls(); got != [4]int64{0, 0, 1, 0} {
		t.Fatalf("reader's registry calls = %v after 100 records, want [0 0 1 0]", got)
	}

	// The generic serde likewise.
	greg := &countingRegistry{cl: reg.cl}
	g, err := serde.AvroGeneric(greg, `{"type":"record","name":"line","fields":[{"name":"sku","type":"string"},{"name":"qty","type":"int"}]}`,
		serde.AvroTopic("lines"))
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range written {
		v, err := g.Deserialize(b)
		if err != nil || v["qty"] != int32(i) {
			t.Fatalf("generic read of record %d: %v, %v", i, v, err)
		}
		if _, err := g.Serialize(v); err != nil {
			t.Fatal(err)
		}
	}
	if got := greg.calls(); got[0]+got[1]+got[2]+got[3] > 2 {
		t.Fatalf("generic serde's registry calls = %v after 100 records, want at most a registration and a fetch", got)
	}
}
