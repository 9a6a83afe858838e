package stream_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
	"github.com/runnel-dev/runnel/topology"
)

// newDriver builds b into a driver with caching off (unless opts turn it
// on): the tests using it check every update an operation forwards.
func newDriver(t *testing.T, b *stream.Builder, opts ...streamtest.Option) *streamtest.Driver {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.New(topo, append([]streamtest.Option{streamtest.Caching(false)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func outputs[K, V any](t *testing.T, d *streamtest.Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) string {
	t.Helper()
	out, err := streamtest.Output(d, topic, ks, vs)
	must(t, err)
	return fmt.Sprint(out)
}

func TestToDynamic(t *testing.T) {
	b := stream.NewBuilder()
	stream.From(b, "events", serde.String, serde.Int64).
		ToDynamic(func(k string, v int64) string { return fmt.Sprintf("events-%s-%d", k, v%2) })
	d := newDriver(t, b)
	in := streamtest.Input(d, "events", serde.String, serde.Int64)
	for i, k := range []string{"a", "b", "a", "a"} {
		must(t, in.Pipe(k, int64(i), int64(i)))
	}
	if got, want := d.OutputTopics(), []string{"events-a-0", "events-a-1", "events-b-1"}; !slices.Equal(got, want) {
		t.Fatalf("topics %v, want %v", got, want)
	}
	if got := outputs(t, d, "events-a-0", serde.String, serde.Int64); got != "[a=0@0 a=2@2]" {
		t.Errorf("events-a-0: %s", got)
	}
}

// counter is a user Processor: it counts records per key in a store and
// emits every count on a wall-clock punctuation.
type counter struct {
	ctx   topology.Context[string, int64]
	store state.KeyValueStore
}

func (c *counter) Init(ctx topology.Context[string, int64]) error {
	c.ctx = ctx
	c.store = ctx.Store("counts").(state.KeyValueStore)
	ctx.Schedule(time.Second, topology.WallClockTime, func(now int64) error {
		it := c.store.All()
		defer it.Close()
		for it.Next() {
			n, _ := serde.Int64.Deserialize(it.Value())
			c.ctx.Forward(topology.Record[string, int64]{Key: string(it.Key()), Value: n, Timestamp: now})
		}
		return it.Err()
	})
	return nil
}

func (c *counter) Process(r topology.Record[string, string]) error {
	b, err := c.store.Get([]byte(r.Key))
	if err != nil {
		return err
	}
	var n int64
	if b != nil {
		n, _ = serde.Int64.Deserialize(b)
	}
	b, _ = serde.Int64.Serialize(n + 1)
	return c.store.Put([]byte(r.Key), b)
}

func (c *counter) Close() error { return nil }

func TestProcess(t *testing.T) {
	b := stream.NewBuilder()
	b.Topology().AddStore(topology.StoreSpec{Name: "counts", Kind: topology.KeyValueStore, Logging: true})
	counts := stream.Process(stream.From(b, "words", serde.String, serde.String),
		func() topology.Processor[string, string, string, int64] { return &counter{} }, []string{"counts"}, stream.Named("counter"))
	counts.To("counts-out")
	d := newDriver(t, b, streamtest.StartTime(10_000))
	in := streamtest.Input(d, "words", serde.String, serde.String)
	for _, w := range []string{"x", "y", "x"} {
		must(t, in.Pipe(w, "", 1))
	}
	if n := len(d.Output("counts-out")); n != 0 {
		t.Fatalf("%d records before the punctuation", n)
	}
	must(t, d.AdvanceWallClock(999))
	must(t, d.AdvanceWallClock(1))
	if got := outputs(t, d, "counts-out", serde.String, serde.Int64); got != "[x=2@11000 y=1@11000]" {
		t.Errorf("punctuated: %s", got)
	}
	if n := d.ChangelogRecords("app-counts-changelog"); n != 3 {
		t.Errorf("changelog records = %d, want 3", n)
	}
}

func TestGlobalTableJoins(t *testing.T) {
	b := stream.NewBuilder()
	products := stream.GlobalTableOf(b, "products", serde.String, serde.String, stream.Materialized("products"))
	orders := stream.From(b, "orders", serde.String, serde.String) // order id -> product id
	byProduct := func(_ string, product string) string { return product }
	stream.JoinGlobal(orders, products, byProduct, func(p, name string) string { return p + ":" + name }).To("inner")
	stream.LeftJoinGlobal(orders, products, byProduct, func(p string, name *string) string {
		if name == nil {
			return p + ":?"
		}
		return p + ":" + *name
	}).To("left")
	// Orders are spread over 3 partitions; the global table is whole in each task.
	d := newDriver(t, b, streamtest.Partitions("orders", 3))
	pin := streamtest.Input(d, "products", serde.String, serde.String)
	oin := streamtest.Input(d, "orders", serde.String, serde.String)
	must(t, pin.Pipe("p1", "apple", 0))
	must(t, pin.Pipe("p2", "pear", 0))
	must(t, oin.Pipe("o1", "p1", 1))
	must(t, oin.Pipe("o2", "p3", 2))
	must(t, pin.Delete("p1", 3))
	must(t, oin.Pipe("o3", "p1", 4))
	must(t, oin.Pipe("o4", "p2", 5))
	if got := outputs(t, d, "inner", serde.String, serde.String); got != "[o1=p1:apple@1 o4=p2:pear@5]" {
		t.Errorf("inner: %s", got)
	}
	if got := outputs(t, d, "left", serde.String, serde.String); got != "[o1=p1:apple@1 o2=p3:?@2 o3=p1:?@4 o4=p2:pear@5]" {
		t.Errorf("left: %s", got)
	}
}

func TestSuppressUntilTimeLimit(t *testing.T) {
	b := stream.NewBuilder()
	stream.From(b, "clicks", serde.String, serde.String).GroupByKey().Count(stream.Materialized("counts")).
		Suppress(stream.UntilTimeLimit(10*time.Millisecond), stream.Named("rate-limit")).ToStream().To("limited")
	d := newDriver(t, b)
	in := streamtest.Input(d, "clicks", serde.String, serde.String)
	for _, e := range []struct {
		k  string
		ts int64
	}{{"a", 0}, {"a", 3}, {"b", 5}, {"a", 9}, {"a", 10}, {"b", 12}, {"a", 14}, {"c", 30}} {
		must(t, in.Pipe(e.k, "", e.ts))
	}
	// a: held from 0, emitted at stream time 10 with its count then (4);
	// b: held from 5, emitted at 15 (reached at 30) with 2; a again from 14.
	want := "[a=4@10 b=2@12 a=5@14]"
	if got := outputs(t, d, "limited", serde.String, serde.Int64); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestRepartitionWithPartitions(t *testing.T) {
	b := stream.NewBuilder()
	events := stream.From(b, "events", serde.String, serde.String)
	stream.SelectKey(events, func(_, v string) string { return v }).
		Repartition(stream.Named("by-value"), stream.WithPartitions(4)).
		Peek(func(string, string) {}).To("out")
	topo, err := b.Build()
	must(t, err)
	p, err := topo.ResolvePartitions("app", func(string) (int, bool) { return 2, true })
	must(t, err)
	if n := p.Topics["app-by-value-repartition"]; n != 4 {
		t.Errorf("repartition topic has %d partitions, want 4", n)
	}
	if !slices.Equal(p.Tasks, []int{2, 4}) {
		t.Errorf("tasks per sub-topology %v, want [2 4]", p.Tasks)
	}
	d, err := streamtest.New(topo, streamtest.DefaultPartitions(2))
	must(t, err)
	defer d.Close()
	in := streamtest.Input(d, "events", serde.String, serde.String)
	for i := range 20 {
		must(t, in.Pipe(fmt.Sprint(i), fmt.Sprint("v", i%7), int64(i)))
	}
	parts := map[string]int32{}
	for _, r := range d.Output("out") {
		if p, ok := parts[string(r.Key)]; ok && p != r.Partition {
			t.Errorf("key %s in partitions %d and %d", r.Key, p, r.Partition)
		}
		parts[string(r.Key)] = r.Partition
	}
	if len(d.Output("out")) != 20 || len(parts) != 7 {
		t.Errorf("%d records of %d keys out", len(d.Output("out")), len(parts))
	}
	if n := len(d.Tasks()); n != 6 {
		t.Errorf("%d tasks, want 2 + 4", n)
	}
}
