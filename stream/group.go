package stream

import (
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// GroupedStream is a stream partitioned by key, ready to aggregate (Kafka
// Streams' KGroupedStream).
type GroupedStream[K, V any] struct {
	s    Stream[K, V] // before the repartition, if rp is set
	name string       // base name for derived stores/topics, or ""
	// rp is the repartition the grouping needs, made by the first
	// aggregation (input), shared by the copies of the GroupedStream.
	rp *pendingRepartition[K, V]
}

// pendingRepartition is a grouping's repartition topic, made once the
// aggregation reading it is known, so that it can be named after the
// aggregation's store (Kafka Streams names an unnamed grouping's
// repartition topic "<store>-repartition" when the store is named).
type pendingRepartition[K, V any] struct {
	o    *options
	base string        // the grouping's name, or a generated one
	made *Stream[K, V] // the repartitioned stream, once made
}

// GroupByKey groups the stream by its key. If the key may have changed
// since the stream was read (Map, SelectKey, FlatMap, Process), records first
// go through a repartition topic "<app>-<name>-repartition", named after
// the grouping (Named), else after the aggregation's store (Materialized:
// store "sums" reads "<app>-sums-repartition"), else generated, as Kafka
// Streams names it. Options: Named, WithSerdes (the repartition topic's),
// WithPartitions.
func (s Stream[K, V]) GroupByKey(opts ...Option) GroupedStream[K, V] {
	return groupByKey(s, s.b.collect(ops.groupByKey, opts))
}

func groupByKey[K, V any](s Stream[K, V], o *options) GroupedStream[K, V] {
	g := GroupedStream[K, V]{s: s, name: o.name}
	if s.rekeyed {
		base := o.name
		if base == "" {
			base = s.b.name(nil, "KSTREAM-AGGREGATE-STATE-STORE")
		}
		// The sink's and source's numbers, taken now as a repartition
		// made here would, so generated names do not depend on when the
		// aggregation comes.
		s.b.seq += 2
		g.rp = &pendingRepartition[K, V]{o: o, base: base}
	}
	return g
}

// input is the stream an aggregation with options o reads: the grouped
// stream, or its repartition topic, made on first use and named after the
// grouping (Named), else after the aggregation's store (Materialized),
// else generated.
func (g GroupedStream[K, V]) input(o *options) Stream[K, V] {
	if g.rp == nil {
		return g.s
	}
	if g.rp.made == nil {
		base := g.rp.base
		if g.name == "" && o.storeName != "" {
			base = o.storeName
		}
		s := repartitionAs(g.s, g.rp.o, base)
		g.rp.made = &s
	}
	return *g.rp.made
}

// keySerde and valueSerde are the serdes of the records aggregations
// read: those of the repartition topic when there is one.
func (g GroupedStream[K, V]) keySerde() serde.Serde[K] {
	k, _ := g.serdes()
	return k
}

func (g GroupedStream[K, V]) valueSerde() serde.Serde[V] {
	_, v := g.serdes()
	return v
}

func (g GroupedStream[K, V]) serdes() (serde.Serde[K], serde.Serde[V]) {
	if g.rp != nil && g.rp.made != nil {
		return g.rp.made.ks, g.rp.made.vs
	}
	if g.rp != nil {
		return serdesOfQuiet(g.rp.o, g.s.ks, g.s.vs)
	}
	return g.s.ks, g.s.vs
}

// GroupBy groups the stream by a new key computed from each record (a
// SelectKey followed by GroupByKey, which repartitions).
func GroupBy[K, V, K2 any](s Stream[K, V], f func(K, V) K2, opts ...Option) GroupedStream[K2, V] {
	return groupByKey(SelectKey(s, f), s.b.collect(ops.groupBy, opts))
}

// storeName picks an aggregation's store name: Materialized, else
// "<name>-store" for a named operation, else a generated one.
func (b *Builder) storeName(o *options, group string) string {
	switch {
	case o.storeName != "":
		return o.storeName
	case o.name != "":
		return o.name + "-store"
	case group != "":
		return group + "-store"
	}
	return b.name(nil, "KSTREAM-AGGREGATE-STATE-STORE")
}

// Count counts the records per key. Options: Named, Materialized,
// WithoutCaching, WithoutLogging.
func (g GroupedStream[K, V]) Count(opts ...Option) Table[K, int64] {
	return aggregate(g, countFold[K, V]("KSTREAM-COUNT", ops.count), opts)
}

// Reduce combines the values of each key with f, the first value standing
// as it is.
func (g GroupedStream[K, V]) Reduce(f func(agg, v V) V, opts ...Option) Table[K, V] {
	return aggregate(g, reduceFold[K](f, g.valueSerde(), ops.reduce), opts)
}

// Aggregate folds the values of each key into an aggregate, starting from
// init(). Options: Named, Materialized, WithValueSerde (the aggregate's),
// WithoutCaching, WithoutLogging.
func Aggregate[K, V, A any](g GroupedStream[K, V], init func() A, f func(key K, value V, agg A) A, opts ...Option) Table[K, A] {
	return aggregate(g, aggregateFold(init, f, ops.aggregate), opts)
}

// fold is an aggregation of a grouped or windowed stream as Count, Reduce
// or Aggregate hands it to the code they share.
type fold[K, V, A any] struct {
	init func() A // nil: a key's first value starts its aggregate
	// f folds a value into the aggregate; first says there was none yet.
	f      func(key K, value V, agg A, first bool) A
	serde  serde.Serde[A] // the aggregate's, unless WithValueSerde gives one; nil: serde.Default
	prefix string         // of a generated node name
	op     op
}

// options collects the aggregation's options, and picks its serde.
func (fd fold[K, V, A]) options(b *Builder, opts []Option) (*options, serde.Serde[A]) {
	o := b.collect(fd.op, opts)
	_, as := serdesOf[K, A](b, o, nil, fd.serde)
	return o, as
}

// countFold counts values, in serde.Int64.
func countFold[K, V any](prefix string, op op) fold[K, V, int64] {
	return fold[K, V, int64]{init: func() int64 { return 0 }, f: func(_ K, _ V, n int64, _ bool) int64 { return n + 1 },
		serde: serde.Int64, prefix: prefix, op: op}
}

// reduceFold combines values with f, the first standing as it is, in vs
// unless WithValueSerde gives another.
func reduceFold[K, V any](f func(agg, v V) V, vs serde.Serde[V], op op) fold[K, V, V] {
	return fold[K, V, V]{f: func(_ K, v V, agg V, first bool) V {
		if first {
			return v
		}
		return f(agg, v)
	}, serde: vs, prefix: "KSTREAM-REDUCE", op: op}
}

// aggregateFold folds values into an aggregate starting from init().
func aggregateFold[K, V, A any](init func() A, f func(K, V, A) A, op op) fold[K, V, A] {
	return fold[K, V, A]{init: init, f: func(k K, v V, a A, _ bool) A { return f(k, v, a) }, prefix: "KSTREAM-AGGREGATE", op: op}
}

func aggregate[K, V, A any](g GroupedStream[K, V], fd fold[K, V, A], opts []Option) Table[K, A] {
	b := g.s.b
	o, as := fd.options(b, opts)
	init, f, prefix := fd.init, fd.f, fd.prefix
	in := g.input(o)
	ks, _ := serdesOf(b, &options{}, g.keySerde(), g.valueSerde())
	name := b.name(o, prefix)
	store := b.storeName(o, g.name)
	topology.AddProcessor(b.tb, name, func() topology.Processor[K, V, K, change[A]] {
		return &streamAgg[K, V, A]{store: store, ks: ks, as: as, init: init, f: f}
	}, in.node)
	b.tb.AddStore(kvSpec(store, o), name)
	return Table[K, A]{b: b, node: name, ks: ks, vs: as, store: store, getter: storeGetter(store, ks, as), sources: in.sources}
}

type streamAgg[K, V, A any] struct {
	store string
	ks    serde.Serde[K]
	as    serde.Serde[A]
	init  func() A
	f     func(K, V, A, bool) A
	w     tableWriter[K, A]
}

func (p *streamAgg[K, V, A]) Init(ctx topology.Context[K, change[A]]) error {
	return p.w.init(ctx, p.store, p.ks, p.as)
}

func (p *streamAgg[K, V, A]) Process(r topology.Record[K, V]) error {
	old, ts, ok, err := p.w.kv.get(r.Key)
	if err != nil {
		return err
	}
	if !ok && p.init != nil {
		old = p.init()
	}
	n := p.f(r.Key, r.Value, old, !ok)
	return p.w.write(r.Key, &n, max(ts, r.Timestamp), r.Headers)
}

func (p *streamAgg[K, V, A]) Close() error { return nil }

// GroupedTable is a table regrouped by a new key (Kafka Streams'
// KGroupedTable): its aggregations add each entry's new value to its group
// and subtract its old one.
type GroupedTable[K, V any] struct {
	b       *Builder
	node    string // emits change[V], partitioned by K
	ks      serde.Serde[K]
	vs      serde.Serde[V]
	sources []string
}

// Count counts the entries per group.
func (g GroupedTable[K, V]) Count(opts ...Option) Table[K, int64] {
	o := g.b.collect(ops.tableCount, opts)
	o.valueSerde = serde.Int64
	return aggregateTable(g, func() int64 { return 0 },
		func(_ K, _ V, n int64) int64 { return n + 1 },
		func(_ K, _ V, n int64) int64 { return n - 1 }, o)
}

// Reduce combines the entries of each group with adder, and takes removed
// entries out with subtractor.
func (g GroupedTable[K, V]) Reduce(adder, subtractor func(agg, v V) V, opts ...Option) Table[K, V] {
	o := g.b.collect(ops.tableReduce, opts)
	if o.valueSerde == nil {
		o.valueSerde = g.vs
	}
	var zero V
	return aggregateTable(g, func() V { return zero },
		func(_ K, v V, a V) V { return adder(a, v) },
		func(_ K, v V, a V) V { return subtractor(a, v) }, o)
}

// AggregateTable folds each group's entries into an aggregate: adder for an
// entry's new value, subtractor for its old one (Kafka Streams'
// KGroupedTable.aggregate). Options: Named, Materialized, WithValueSerde,
// WithoutCaching, WithoutLogging.
func AggregateTable[K, V, A any](g GroupedTable[K, V], init func() A, adder, subtractor func(key K, value V, agg A) A, opts ...Option) Table[K, A] {
	return aggregateTable(g, init, adder, subtractor, g.b.collect(ops.aggregateTable, opts))
}

func aggregateTable[K, V, A any](g GroupedTable[K, V], init func() A, adder, subtractor func(K, V, A) A, o *options) Table[K, A] {
	b := g.b
	_, as := serdesOf[K, A](b, o, nil, nil)
	name := b.name(o, "KTABLE-AGGREGATE")
	store := b.storeName(o, "")
	ks := g.ks
	topology.AddProcessor(b.tb, name, func() topology.Processor[K, change[V], K, change[A]] {
		return &tableAgg[K, V, A]{store: store, ks: ks, as: as, init: init, add: adder, sub: subtractor}
	}, g.node)
	b.tb.AddStore(kvSpec(store, o), name)
	return Table[K, A]{b: b, node: name, ks: ks, vs: as, store: store, getter: storeGetter(store, ks, as), sources: g.sources}
}

type tableAgg[K, V, A any] struct {
	store    string
	ks       serde.Serde[K]
	as       serde.Serde[A]
	init     func() A
	add, sub func(K, V, A) A
	w        tableWriter[K, A]
}

func (p *tableAgg[K, V, A]) Init(ctx topology.Context[K, change[A]]) error {
	return p.w.init(ctx, p.store, p.ks, p.as)
}

func (p *tableAgg[K, V, A]) Process(r topology.Record[K, change[V]]) error {
	agg, ts, ok, err := p.w.kv.get(r.Key)
	if err != nil {
		return err
	}
	if !ok {
		agg = p.init()
	}
	if r.Value.HasOld {
		agg = p.sub(r.Key, r.Value.Old, agg)
	}
	if r.Value.HasNew {
		agg = p.add(r.Key, r.Value.New, agg)
	}
	return p.w.write(r.Key, &agg, max(ts, r.Timestamp), r.Headers)
}

func (p *tableAgg[K, V, A]) Close() error { return nil }
