package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/broker"
)

func startRegistryBroker(t *testing.T, dir string) (*broker.Broker, *sr.Client) {
	t.Helper()
	b, err := broker.Start(testContext(t), broker.Config{
		DataDir: dir, Listen: "127.0.0.1:0", RegistryListen: "127.0.0.1:0",
		OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if b.RegistryAddr() == "" {
		b.Close()
		t.Fatal("registry not served")
	}
	cl, err := sr.NewClient(sr.URLs("http://" + b.RegistryAddr()))
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	return b, cl
}

// TestRegistryOverBroker drives the broker's schema registry with
// franz-go's sr client over HTTP, then restarts the broker and finds ids,
// versions, deletions, configs and modes where they were.
func TestRegistryOverBroker(t *testing.T) {
	const (
		v1  = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"},{"name":"qty","type":"int"}]}`
		v2  = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"},{"name":"qty","type":"long"},{"name":"note","type":"string","default":""}]}`
		bad = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"string"}]}`
	)
	ctx := testContext(t)
	dir := t.TempDir()
	b, cl := startRegistryBroker(t, dir)
	defer func() { b.Close() }()

	s1, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: v1})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: v2})
	if err != nil {
		t.Fatalf("compatible evolution refused: %v", err)
	}
	if s1.ID == s2.ID || s2.Version != 2 {
		t.Fatalf("ids %d %d, version %d", s1.ID, s2.ID, s2.Version)
	}
	_, err = cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: bad})
	var re *sr.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusConflict || re.ErrorCode != 409 {
		t.Fatalf("incompatible schema: %v, want HTTP 409", err)
	}
	if _, err := cl.CreateSchema(ctx, "payments-value", sr.Schema{Schema: v1}); err != nil {
		t.Fatal(err)
	}
	if res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, "payments-value"); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if res := cl.SetMode(ctx, sr.ModeReadOnly, "payments-value"); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	// Soft, then permanent delete of a subject that will stay gone.
	if _, err := cl.CreateSchema(ctx, "gone-value", sr.Schema{Schema: `"string"`}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeleteSubject(ctx, "gone-value", sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeleteSubject(ctx, "gone-value", sr.HardDelete); err != nil {
		t.Fatal(err)
	}
	// And a soft-deleted version that stays soft-deleted.
	if err := cl.DeleteSchema(ctx, "orders-value", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}

	// The records are in _schemas, keyed as Confluent keys them.
	recs := consumeAll(t, b.Addr(), "_schemas", 1)
	var key map[string]any
	if err := json.Unmarshal(recs[0].Key, &key); err != nil || key["keytype"] == nil {
		t.Fatalf("first _schemas record key %q: %v", recs[0].Key, err)
	}
	cfgs, err := newAdmin(t, b.Addr()).DescribeTopicConfigs(ctx, "_schemas")
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, c := range cfgs[0].Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	if policy != "compact" {
		t.Fatalf("_schemas cleanup.policy %q, want compact", policy)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, cl = startRegistryBroker(t, dir)

	latest, err := cl.SchemaByVersion(ctx, "orders-value", -1)
	if err != nil || latest.ID != s2.ID || latest.Version != 2 {
		t.Fatalf("after restart, latest orders-value: %+v, %v", latest, err)
	}
	if vs, err := cl.SubjectVersions(ctx, "orders-value"); err != nil || !slices.Equal(vs, []int{2}) {
		t.Fatalf("after restart, versions: %v, %v (version 1 was soft-deleted)", vs, err)
	}
	if byID, err := cl.SchemaByID(ctx, s1.ID); err != nil || byID.Schema != v1 {
		t.Fatalf("after restart, id %d: %+v, %v", s1.ID, byID, err)
	}
	if subs, err := cl.Subjects(ctx); err != nil || !slices.Equal(subs, []string{"orders-value", "payments-value"}) {
		t.Fatalf("after restart, subjects: %v, %v", subs, err)
	}
	if res := cl.Compatibility(ctx, "payments-value"); res[0].Err != nil || res[0].Level != sr.CompatFull {
		t.Fatalf("after restart, payments-value level: %+v", res[0])
	}
	if res := cl.Mode(ctx, "payments-value"); res[0].Err != nil || res[0].Mode != sr.ModeReadOnly {
		t.Fatalf("after restart, payments-value mode: %+v", res[0])
	}
	if _, err := cl.CreateSchema(ctx, "payments-value", sr.Schema{Schema: v2}); err == nil {
		t.Fatal("after restart, a read-only subject took a schema")
	}
	// The same schema under a new subject keeps its id; a new one gets
	// the next.
	if s, err := cl.CreateSchema(ctx, "again-value", sr.Schema{Schema: v2}); err != nil || s.ID != s2.ID {
		t.Fatalf("after restart, v2 again: %+v, %v", s, err)
	}
	if _, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: bad}); err == nil {
		t.Fatal("after restart, an incompatible schema was accepted")
	}
}

// TestRegistryOff checks the registry is off unless asked for.
func TestRegistryOff(t *testing.T) {
	b, err := broker.Start(testContext(t), broker.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a := b.RegistryAddr(); a != "" {
		t.Fatalf("registry served on %s without RegistryListen", a)
	}
}

func TestRegistryBadListen(t *testing.T) {
	_, err := broker.Start(context.Background(), broker.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", RegistryListen: "nonsense"})
	if err == nil {
		t.Fatal("started with a bad registry address")
	}
}
