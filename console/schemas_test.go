package console_test

import (
	"encoding/binary"
	"net/http"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/console"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestSchemas: a broker with its registry shows the registry's subjects,
// versions, compatibility levels and the diff between two versions; one
// without it has no schema pages.
func TestSchemas(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{HTTPListen: "127.0.0.1:0", RegistryListen: "127.0.0.1:0",
		GroupInitialRebalanceDelay: -1, OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
	web := "http://" + b.HTTPAddr()
	reg, err := sr.NewClient(sr.URLs("http://" + b.RegistryAddr()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	v1 := `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}`
	v2 := `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"note","type":"string","default":"<b>none</b>"}]}`
	for _, s := range []string{v1, v2} {
		if _, err := reg.CreateSchema(ctx, "orders-value", sr.Schema{Schema: s}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range reg.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, "orders-value") {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}

	var list console.SchemaSubjects
	getJSON(t, web+"/api/schemas", &list)
	if list.Compatibility != "BACKWARD" || len(list.Subjects) != 1 || list.Subjects[0].Subject != "orders-value" ||
		len(list.Subjects[0].Versions) != 2 || list.Subjects[0].Compatibility != "FULL" {
		t.Fatalf("subjects %+v", list)
	}
	var s console.Subject
	getJSON(t, web+"/api/schemas/orders-value", &s)
	var added []string
	for _, d := range s.Diff {
		if d.Op == "+" {
			added = append(added, strings.TrimSpace(d.Text))
		}
		if d.Op == "-" {
			t.Errorf("a line removed: %q", d.Text)
		}
	}
	if s.Version != 2 || s.Previous != 1 || s.Type != "AVRO" || !strings.Contains(strings.Join(added, " "), `"name": "note"`) {
		t.Fatalf("subject %+v, added %q", s, added)
	}
	var s1 console.Subject
	getJSON(t, web+"/api/schemas/orders-value?version=1", &s1)
	if s1.Version != 1 || s1.Previous != 0 || len(s1.Diff) != 0 || !strings.Contains(s1.Schema, `"name": "id"`) {
		t.Fatalf("version 1: %+v", s1)
	}
	for _, u := range []string{"/api/schemas/nosuch", "/api/schemas/orders-value?version=7"} {
		if status, body, _ := get(t, web+u); status != http.StatusNotFound {
			t.Errorf("%s: %d %s", u, status, body)
		}
	}
	status, body, _ := get(t, web+"/schemas/orders-value")
	if status != http.StatusOK || !strings.Contains(body, `class="diff-add"`) || !strings.Contains(body, "&lt;b&gt;none&lt;/b&gt;") || strings.Contains(body, "<b>none</b>") {
		t.Fatalf("subject page: %d\n%s", status, body)
	}
	if status, body, _ := get(t, web+"/"); status != http.StatusOK || !strings.Contains(body, `href="/schemas"`) {
		t.Fatalf("overview lacks the schemas link: %d", status)
	}

	// A record in the registry's wire format shows decoded, as JSON; one
	// naming an unknown schema id stays binary.
	orders, err := reg.SchemaByVersion(ctx, "orders-value", 2)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(orders.Schema.Schema)
	if err != nil {
		t.Fatal(err)
	}
	avroBytes, err := codec.BinaryFromNative(nil, map[string]any{"id": "o-1", "note": "<i>rush</i>"})
	if err != nil {
		t.Fatal(err)
	}
	wire := append([]byte{0, 0, 0, 0, 0}, avroBytes...)
	binary.BigEndian.PutUint32(wire[1:5], uint32(orders.ID))
	unknown := append([]byte{0, 0, 0, 0x27, 0x0f}, avroBytes...) // id 9999
	// A record of a few bytes whose array claims 2^31-1 items: shown as
	// bytes, where goavro alone would try to allocate them all.
	tags, err := reg.CreateSchema(ctx, "tags-value", sr.Schema{Schema: `{"type":"array","items":"long"}`})
	if err != nil {
		t.Fatal(err)
	}
	hostile := []byte{0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0, 0}
	binary.BigEndian.PutUint32(hostile[1:5], uint32(tags.ID))
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("avro-orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "avro-orders"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("a"), Value: wire}, &kgo.Record{Key: []byte("b"), Value: unknown}, &kgo.Record{Key: []byte("c"), Value: hostile}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var m console.Messages
	getJSON(t, web+"/api/topics/avro-orders/messages?from=earliest", &m)
	if len(m.Records) != 3 {
		t.Fatalf("avro-orders: %+v", m)
	}
	if v := m.Records[0].Value; v.Encoding != "avro" || v.SchemaID != orders.ID || !strings.Contains(v.Text, `"id": "o-1"`) || !strings.Contains(v.Text, `"note": "<i>rush`) {
		t.Errorf("registered record: %+v", v)
	}
	if v := m.Records[1].Value; v.Encoding != "binary" {
		t.Errorf("record of an unknown schema id: %+v", v)
	}
	if v := m.Records[2].Value; v.Encoding != "binary" {
		t.Errorf("record claiming 2^31 items: %+v", v)
	}
	if status, body, _ := get(t, web+"/topics/avro-orders?from=earliest"); status != http.StatusOK || !strings.Contains(body, "o-1") || strings.Contains(body, "<i>rush</i>") {
		t.Errorf("topic page with an avro record: %d", status)
	}

	// Without a registry: no link, and the pages say why they are absent.
	c := startCluster(t)
	if _, body, _ := get(t, c.web+"/"); strings.Contains(body, `href="/schemas"`) {
		t.Error("a schemas link without a registry")
	}
	if status, body, _ := get(t, c.web+"/api/schemas"); status != http.StatusNotFound || !strings.Contains(body, "no schema registry") {
		t.Errorf("schemas without a registry: %d %s", status, body)
	}
}
