package console_test

import (
	"net/http"
	"strings"
	"testing"

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

	// Without a registry: no link, and the pages say why they are absent.
	c := startCluster(t)
	if _, body, _ := get(t, c.web+"/"); strings.Contains(body, `href="/schemas"`) {
		t.Error("a schemas link without a registry")
	}
	if status, body, _ := get(t, c.web+"/api/schemas"); status != http.StatusNotFound || !strings.Contains(body, "no schema registry") {
		t.Errorf("schemas without a registry: %d %s", status, body)
	}
}
