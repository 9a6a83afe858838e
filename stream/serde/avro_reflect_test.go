package serde_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/stream/serde"
)

type avroLine struct {
	SKU   string  `avro:"sku"`
	Qty   int32   `avro:"qty"`
	Price float64 `avro:"price"`
}

type avroAddress struct {
	Street string
	Zip    *string `avro:"zip"`
}

type avroOrder struct {
	ID       int64             `avro:"id"`
	Customer string            `avro:"customer"`
	Lines    []avroLine        `avro:"lines"`
	Attrs    map[string]string `avro:"attrs"`
	Note     *string           `avro:"note"`
	Ship     *avroAddress      `avro:"ship"`
	Bill     avroAddress       `avro:"bill"`
	At       time.Time         `avro:"at"`
	Paid     bool              `avro:"paid"`
	Weight   float32           `avro:"weight"`
	Raw      []byte            `avro:"raw"`
	Small    int8              `avro:"small"`
	Skipped  string            `avro:"-"`
	internal int
}

type avroNode struct {
	Value int64     `avro:"value"`
	Next  *avroNode `avro:"next"`
}

// TestAvroSchemaOf derives schemas from Go types: each row a type and
// the schema JSON it must give (compared as JSON values), or an error.
func TestAvroSchemaOf(t *testing.T) {
	type flat struct {
		B  bool
		I  int
		I8 int8
		U  uint16
		U3 uint32
		F  float64
		S  string `avro:"s,omitempty"`
	}
	type withUint struct{ N uint64 }
	type withIface struct{ X any }
	type withIntMap struct{ M map[int]string }
	type withChan struct{ C chan int }
	type empty struct{}
	for _, tc := range []struct {
		name    string
		schema  func() (string, error)
		want    string
		wantErr string
	}{
		{"scalars", func() (string, error) { return serde.AvroSchemaOf[flat]("") }, `{"type":"record","name":"flat","fields":[
			{"name":"B","type":"boolean"},{"name":"I","type":"long"},{"name":"I8","type":"int"},
			{"name":"U","type":"int"},{"name":"U3","type":"long"},{"name":"F","type":"double"},
			{"name":"s","type":"string"}]}`, ""},
		{"nested, slices, maps, pointers, time", func() (string, error) { return serde.AvroSchemaOf[avroOrder]("shop") }, `{"type":"record","name":"avroOrder","namespace":"shop","fields":[
			{"name":"id","type":"long"},
			{"name":"customer","type":"string"},
			{"name":"lines","type":{"type":"array","items":{"type":"record","name":"avroLine","namespace":"shop","fields":[
				{"name":"sku","type":"string"},{"name":"qty","type":"int"},{"name":"price","type":"double"}]}}},
			{"name":"attrs","type":{"type":"map","values":"string"}},
			{"name":"note","type":["null","string"],"default":null},
			{"name":"ship","type":["null",{"type":"record","name":"avroAddress","namespace":"shop","fields":[
				{"name":"Street","type":"string"},{"name":"zip","type":["null","string"],"default":null}]}],"default":null},
			{"name":"bill","type":"shop.avroAddress"},
			{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
			{"name":"paid","type":"boolean"},
			{"name":"weight","type":"float"},
			{"name":"raw","type":"bytes"},
			{"name":"small","type":"int"}]}`, ""},
		{"recursive", func() (string, error) { return serde.AvroSchemaOf[avroNode]("") }, `{"type":"record","name":"avroNode","fields":[
			{"name":"value","type":"long"},{"name":"next","type":["null","avroNode"],"default":null}]}`, ""},
		{"empty struct", func() (string, error) { return serde.AvroSchemaOf[empty]("") }, `{"type":"record","name":"empty","fields":[]}`, ""},
		{"uint64", func() (string, error) { return serde.AvroSchemaOf[withUint]("") }, "", "withUint.N: uint64 has no Avro type"},
		{"interface", func() (string, error) { return serde.AvroSchemaOf[withIface]("") }, "", "has no Avro type"},
		{"int map keys", func() (string, error) { return serde.AvroSchemaOf[withIntMap]("") }, "", "map keys must be strings"},
		{"channel", func() (string, error) { return serde.AvroSchemaOf[withChan]("") }, "", "has no Avro type"},
		{"not a struct", func() (string, error) { return serde.AvroSchemaOf[string]("") }, "", "not a struct"},
		{"time is no record", func() (string, error) { return serde.AvroSchemaOf[time.Time]("") }, "", "not a struct"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.schema()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one saying %q (schema %s)", err, tc.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			if err := json.Unmarshal([]byte(got), &g); err != nil {
				t.Fatalf("derived schema is not JSON: %v: %s", err, got)
			}
			if err := json.Unmarshal([]byte(tc.want), &w); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("schema\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestAvroTypedRoundTrip writes Go values with Avro[T] (schema derived,
// registered under TopicNameStrategy's subject) and reads them back
// equal, and the registry holds the derived schema.
func TestAvroTypedRoundTrip(t *testing.T) {
	cl := newRegistry(t)
	s, err := serde.Avro[avroOrder](cl, serde.AvroTopic("orders"), serde.AvroNamespace("shop"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(1_700_000_000_123).UTC()
	for _, v := range []avroOrder{
		{ID: 1, Customer: "ann", Lines: []avroLine{{"pen", 2, 1.5}, {"ink", 1, 3}}, Attrs: map[string]string{"gift": "yes"},
			Note: ptr("fragile"), Ship: &avroAddress{Street: "Main 1", Zip: ptr("1000")}, Bill: avroAddress{Street: "Side 2"},
			At: at, Paid: true, Weight: 0.25, Raw: []byte{1, 2}, Small: -3},
		{ID: 2, Customer: "bob", Lines: []avroLine{}, Attrs: map[string]string{}, At: at, Raw: []byte{}},
	} {
		b, err := s.Serialize(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Deserialize(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Fatalf("round trip:\n%+v\nwant\n%+v", got, v)
		}
	}
	ss, err := cl.SchemaByVersion(context.Background(), "orders-value", 1)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := serde.AvroSchemaOf[avroOrder]("shop")
	if ss.Schema.Schema != want {
		t.Fatalf("registered %s, want the derived %s", ss.Schema.Schema, want)
	}

	// A recursive type.
	ns, err := serde.Avro[avroNode](cl, serde.AvroTopic("nodes"))
	if err != nil {
		t.Fatal(err)
	}
	list := avroNode{1, &avroNode{2, &avroNode{3, nil}}}
	b, err := ns.Serialize(list)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ns.Deserialize(b); err != nil || !reflect.DeepEqual(got, list) {
		t.Fatalf("recursive: %+v, %v", got, err)
	}
}

// TestAvroTypedGivenSchema maps a struct to a schema given as text: by
// field name, a record field the struct lacks written with its default,
// enums as strings, a struct field the record lacks ignored, and a type
// that does not fit refused when the serde is made.
func TestAvroTypedGivenSchema(t *testing.T) {
	cl := newRegistry(t)
	type item struct {
		ID     int32  `avro:"id"`
		Item   string `avro:"item"`
		Status string `avro:"status"`
		Extra  string `avro:"extra"`
	}
	s, err := serde.Avro[item](cl, serde.AvroSchema(orderV1), serde.AvroSubject("given-value"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Serialize(item{ID: 4, Item: "cup", Status: "PAID", Extra: "not written"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Deserialize(b)
	if err != nil || got != (item{ID: 4, Item: "cup", Status: "PAID"}) {
		t.Fatalf("given schema round trip: %+v, %v", got, err)
	}
	if _, err := s.Serialize(item{ID: 4, Item: "cup", Status: "LOST"}); err == nil {
		t.Error("wrote an enum symbol the schema does not have")
	}
	type wrong struct {
		ID string `avro:"id"`
	}
	if _, err := serde.Avro[wrong](cl, serde.AvroSchema(orderV1)); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("a string field for an int: %v", err)
	}
	type missing struct {
		Item string `avro:"item"`
	}
	if _, err := serde.Avro[missing](cl, serde.AvroSchema(orderV1)); err == nil || !strings.Contains(err.Error(), `"id"`) {
		t.Errorf("a record field without default missing from the struct: %v", err)
	}
	if _, err := serde.Avro[map[string]any](cl); err == nil {
		t.Error("Avro of a map type")
	}
}

// TestAvroSubjectStrategies registers under the subject each strategy
// names, and fails to write without the topic a strategy needs.
func TestAvroSubjectStrategies(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		opts    []serde.AvroOption
		subject string
	}{
		{"topic (default), value", []serde.AvroOption{serde.AvroTopic("t1")}, "t1-value"},
		{"topic, key", []serde.AvroOption{serde.AvroTopic("t1"), serde.AvroKey()}, "t1-key"},
		{"record", []serde.AvroOption{serde.AvroTopic("t1"), serde.AvroSubjectNameStrategy(serde.RecordNameStrategy)}, "shop.avroLine"},
		{"record without topic", []serde.AvroOption{serde.AvroSubjectNameStrategy(serde.RecordNameStrategy)}, "shop.avroLine"},
		{"topic record", []serde.AvroOption{serde.AvroTopic("t2"), serde.AvroSubjectNameStrategy(serde.TopicRecordNameStrategy)}, "t2-shop.avroLine"},
		{"explicit subject wins", []serde.AvroOption{serde.AvroTopic("t1"), serde.AvroSubject("mine")}, "mine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := newRegistry(t)
			s, err := serde.Avro[avroLine](cl, append(tc.opts, serde.AvroNamespace("shop"))...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Serialize(avroLine{"pen", 1, 2}); err != nil {
				t.Fatal(err)
			}
			subjects, err := cl.Subjects(ctx)
			if err != nil || !reflect.DeepEqual(subjects, []string{tc.subject}) {
				t.Fatalf("subjects %v, %v; want [%s]", subjects, err, tc.subject)
			}
		})
	}
	cl := newRegistry(t)
	for _, strategy := range []serde.SubjectNameStrategy{serde.TopicNameStrategy, serde.TopicRecordNameStrategy} {
		s, err := serde.Avro[avroLine](cl, serde.AvroSubjectNameStrategy(strategy))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Serialize(avroLine{}); err == nil || !strings.Contains(err.Error(), "AvroTopic") {
			t.Errorf("wrote without the topic its strategy needs: %v", err)
		}
	}
}

// TestAvroAutoRegisterAndLatest: with auto-registration off the serde
// only looks its schema up; with use-latest-version it writes with the
// subject's latest schema, resolving its values to it, and the bytes
// carry that schema's id.
func TestAvroAutoRegisterAndLatest(t *testing.T) {
	ctx := context.Background()
	cl := newRegistry(t)
	type v1 struct {
		SKU string `avro:"sku"`
	}
	off, err := serde.Avro[v1](cl, serde.AvroTopic("items"), serde.AvroAutoRegister(false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.Serialize(v1{"pen"}); err == nil {
		t.Fatal("auto-registration off: wrote a schema the registry does not have")
	}
	if subjects, _ := cl.Subjects(ctx); len(subjects) != 0 {
		t.Fatalf("auto-registration off registered %v", subjects)
	}
	schemaV1, _ := serde.AvroSchemaOf[v1]("")
	s1, err := cl.CreateSchema(ctx, "items-value", sr.Schema{Schema: schemaV1})
	if err != nil {
		t.Fatal(err)
	}
	off, _ = serde.Avro[v1](cl, serde.AvroTopic("items"), serde.AvroAutoRegister(false))
	b, err := off.Serialize(v1{"pen"})
	if err != nil || int(b[4]) != s1.ID {
		t.Fatalf("auto-registration off, schema registered: % x, %v; want id %d", b, err, s1.ID)
	}

	// A newer version with a defaulted field: use-latest writes with it.
	const schemaV2 = `{"type":"record","name":"v1","fields":[{"name":"sku","type":"string"},{"name":"qty","type":"int","default":1}]}`
	s2, err := cl.CreateSchema(ctx, "items-value", sr.Schema{Schema: schemaV2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := serde.Avro[v1](cl, serde.AvroTopic("items"), serde.AvroUseLatestVersion(true)); err == nil {
		t.Fatal("use-latest with auto-registration on was accepted")
	}
	latest, err := serde.Avro[v1](cl, serde.AvroTopic("items"), serde.AvroAutoRegister(false), serde.AvroUseLatestVersion(true))
	if err != nil {
		t.Fatal(err)
	}
	b, err = latest.Serialize(v1{"ink"})
	if err != nil {
		t.Fatal(err)
	}
	if int(b[4]) != s2.ID {
		t.Fatalf("use-latest wrote id %d, want the latest's %d", b[4], s2.ID)
	}
	type v2 struct {
		SKU string `avro:"sku"`
		Qty int32  `avro:"qty"`
	}
	r, err := serde.Avro[v2](cl, serde.AvroSchema(schemaV2))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Deserialize(b); err != nil || got != (v2{"ink", 1}) {
		t.Fatalf("read what use-latest wrote: %+v, %v", got, err)
	}
	// And the v1 reader reads it too (qty dropped).
	if got, err := latest.Deserialize(b); err != nil || got != (v1{"ink"}) {
		t.Fatalf("the v1 serde reads v2 data: %+v, %v", got, err)
	}
}
