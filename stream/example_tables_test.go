package stream_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
	"github.com/runnel-dev/runnel/topology"
)

// Tables: read a topic as the latest value per key, filter it, map its
// values, and turn its updates back into a stream (deletes become
// tombstones).
func Example_tables() {
	b := stream.NewBuilder()
	stock := stream.TableOf(b, "stock", serde.String, serde.Int64)
	low := stock.Filter(func(_ string, n int64) bool { return n < 5 })
	stream.MapTableValues(low, func(n int64) string { return fmt.Sprintf("only %d left", n) }).ToStream().To("alerts")
	topo, _ := b.Build()
	d, _ := streamtest.New(topo, streamtest.Caching(false)) // every update: caching off, as with runnel.CacheBytes(0)
	in := streamtest.Input(d, "stock", serde.String, serde.Int64)
	in.Pipe("apples", 10, 1)
	in.Pipe("apples", 3, 2)
	in.Pipe("pears", 2, 3)
	in.Pipe("apples", 8, 4) // no longer low: the alert is withdrawn
	in.Delete("pears", 5)
	printOutput(d, "alerts")
	// Output:
	// alerts [apples=only 3 left@2 pears=only 2 left@3 apples=<tombstone>@4 pears=<tombstone>@5]
}

// Grouping and aggregation: streams aggregate per key (after a re-key,
// through a repartition topic); tables regrouped by a new key aggregate
// with an adder and a subtractor, so an entry moving between groups
// leaves the old one.
func Example_aggregation() {
	b := stream.NewBuilder()
	sales := stream.From(b, "sales", serde.String, serde.Int64) // shop -> amount
	stream.Aggregate(sales.GroupByKey(), func() string { return "" },
		func(_ string, n int64, agg string) string { return strings.TrimPrefix(agg+fmt.Sprintf(",%d", n), ",") }).
		ToStream().To("history")
	stream.GroupBy(sales, func(shop string, _ int64) string { return shop[:1] }).
		Reduce(func(a, n int64) int64 { return a + n }).ToStream().To("by-letter")
	staff := stream.TableOf(b, "staff", serde.String, serde.String) // person -> shop
	stream.GroupTableBy(staff, func(person, shop string) (string, string) { return shop, person }).
		Count().ToStream().To("headcount")
	topo, _ := b.Build()
	d, _ := streamtest.New(topo)
	s := streamtest.Input(d, "sales", serde.String, serde.Int64)
	s.Pipe("paris", 10, 1)
	s.Pipe("porto", 5, 2)
	s.Pipe("paris", 7, 3)
	p := streamtest.Input(d, "staff", serde.String, serde.String)
	p.Pipe("ann", "paris", 4)
	p.Pipe("bob", "paris", 5)
	p.Pipe("ann", "porto", 6)
	d.Commit() // the caches forward their latest updates, as at a commit of the runtime
	history, _ := streamtest.Latest(d, "history", serde.String, serde.String)
	byLetter, _ := streamtest.Latest(d, "by-letter", serde.String, serde.Int64)
	headcount, _ := streamtest.Latest(d, "headcount", serde.String, serde.Int64)
	fmt.Println(history, byLetter, headcount)
	// Output:
	// map[paris:10,7 porto:5] map[p:22] map[paris:1 porto:1]
}

// dedup is a Processor API processor: it forwards the first record of
// each key and remembers keys in a store, forgetting them on a stream-time
// punctuation.
type dedup struct {
	ctx  topology.Context[string, string]
	seen state.KeyValueStore
}

func (p *dedup) Init(ctx topology.Context[string, string]) error {
	p.ctx, p.seen = ctx, ctx.Store("seen").(state.KeyValueStore)
	ctx.Schedule(time.Minute, topology.StreamTime, func(int64) error {
		it := p.seen.All()
		var keys [][]byte
		for it.Next() {
			keys = append(keys, append([]byte(nil), it.Key()...))
		}
		it.Close()
		for _, k := range keys {
			p.seen.Delete(k)
		}
		return nil
	})
	return nil
}

func (p *dedup) Process(r topology.Record[string, string]) error {
	if old, _ := p.seen.PutIfAbsent([]byte(r.Key), []byte{1}); old == nil {
		p.ctx.Forward(r)
	}
	return nil
}

func (p *dedup) Close() error { return nil }

// Process runs a Processor API processor, with a store of its own, inside
// a DSL topology.
func Example_process() {
	b := stream.NewBuilder()
	b.Topology().AddStore(topology.StoreSpec{Name: "seen", Kind: topology.KeyValueStore, Logging: true})
	events := stream.From(b, "events", serde.String, serde.String)
	stream.Process(events, func() topology.Processor[string, string, string, string] { return &dedup{} },
		[]string{"seen"}).To("unique")
	topo, _ := b.Build()
	d, _ := streamtest.New(topo)
	in := streamtest.Input(d, "events", serde.String, serde.String)
	in.Pipe("a", "1", 0)
	in.Pipe("a", "2", 1_000)
	in.Pipe("b", "3", 2_000)
	in.Pipe("c", "4", 61_000) // a minute of stream time: the punctuation forgets a and b
	in.Pipe("a", "5", 62_000)
	printOutput(d, "unique")
	// Output:
	// unique [a=1@0 b=3@2000 c=4@61000 a=5@62000]
}
