package runnel_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
)

// TestAppAvroDeadLetter: input that is not Avro of a known schema (no
// magic byte, an unknown schema id, truncated bytes) is a deserialization
// error the app's handler sees, so the dead-letter topic gets it and the
// good records go through.
func TestAppAvroDeadLetter(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{RegistryListen: "127.0.0.1:0", GroupInitialRebalanceDelay: -1,
		OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
	createTopics(t, b.Addr(), 1, "avro-in", "avro-out")
	cl, err := sr.NewClient(sr.URLs("http://" + b.RegistryAddr()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := serde.AvroGeneric(cl, `{"type":"record","name":"N","fields":[{"name":"n","type":"long"}]}`, serde.AvroSubject("avro-in-value"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	good := func(n int64) {
		v, err := s.Serialize(map[string]any{"n": n})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: "avro-in", Value: v})
	}
	good(1)
	recs = append(recs, &kgo.Record{Topic: "avro-in", Value: []byte("plain text")})
	good(2)
	recs = append(recs, &kgo.Record{Topic: "avro-in", Value: []byte{0, 0, 0, 0x7f, 0x7f, 2}})
	good(3)
	v, _ := s.Serialize(map[string]any{"n": int64(1 << 40)})
	recs = append(recs, &kgo.Record{Topic: "avro-in", Value: v[:len(v)-2]})
	good(4)
	if err := newTestClient(t, b.Addr()).ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	topo := buildTopology(t, func(sb *stream.Builder) {
		stream.From(sb, "avro-in", serde.Bytes, s).To("avro-out", stream.WithSerdes(serde.Bytes, s))
	})
	app := runApp(t, topo, nil, runnel.ApplicationID("avro-dlq"), runnel.Brokers(b.Addr()), runnel.StateDir(t.TempDir()),
		runnel.DeserializationErrorHandler(runnel.DeadLetterQueue("avro-dlq")))
	out := consumeN(t, b.Addr(), "avro-out", 4)
	for i, r := range out {
		m, err := s.Deserialize(r.Value)
		if err != nil || m["n"] != int64(i+1) {
			t.Fatalf("output %d: %v, %v", i, m, err)
		}
	}
	dl := consumeN(t, b.Addr(), "avro-dlq", 3)
	for i, want := range []*kgo.Record{recs[1], recs[3], recs[5]} {
		if string(dl[i].Value) != string(want.Value) {
			t.Fatalf("dead letter %d: % x, want % x", i, dl[i].Value, want.Value)
		}
	}
	if m := app.Metrics(); m.DeserializationErrors != 3 {
		t.Fatalf("deserialization errors %d, want 3", m.DeserializationErrors)
	}
}

// consumeN reads n records of topic from its start.
func consumeN(t *testing.T, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := newTestClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: %d of %d records before the deadline", topic, len(out), n)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// TestAppAvroEmbeddedRegistry: an App on its embedded broker uses its own
// registry, whose address is known only after Start, through
// serde.LazyRegistry.
func TestAppAvroEmbeddedRegistry(t *testing.T) {
	var app *runnel.App
	reg := serde.LazyRegistry(func() (*sr.Client, error) { return sr.NewClient(sr.URLs(app.RegistryURL())) })
	const schema = `{"type":"record","name":"N","fields":[{"name":"n","type":"long"}]}`
	in, err := serde.AvroGeneric(reg, schema, serde.AvroSubject("emb-in-value"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := serde.AvroGeneric(reg, schema, serde.AvroSubject("emb-out-value"))
	if err != nil {
		t.Fatal(err)
	}
	topo := buildTopology(t, func(sb *stream.Builder) {
		stream.MapValues(stream.From(sb, "emb-in", serde.Bytes, in), func(m map[string]any) map[string]any {
			return map[string]any{"n": m["n"].(int64) * 10}
		}).To("emb-out", stream.WithSerdes(serde.Bytes, out))
	})
	app, err = runnel.NewApp(topo, runnel.ApplicationID("avro-embedded"), runnel.StateDir(t.TempDir()),
		runnel.CreateSourceTopics(1), runnel.CreateSinkTopics(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	addr := app.Brokers()[0]
	var recs []*kgo.Record
	for n := range int64(3) {
		v, err := in.Serialize(map[string]any{"n": n + 1})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: "emb-in", Value: v})
	}
	if err := newTestClient(t, addr).ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for i, r := range consumeN(t, addr, "emb-out", 3) {
		m, err := out.Deserialize(r.Value)
		if err != nil || m["n"] != int64(10*(i+1)) {
			t.Fatalf("output %d: %v, %v", i, m, err)
		}
	}
}
