package stream

import (
	"slices"

	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// Table is a changelog stream read as the latest value per key (Kafka
// Streams' KTable). Its node emits changes: each key's new and previous
// value. A Table can be looked up by key (joins) through its store, or, for
// tables derived without a store, through its parent's store and the
// derivation.
type Table[K, V any] struct {
	b       *Builder
	node    string
	ks      serde.Serde[K]
	vs      serde.Serde[V]
	store   string // materialized store, or ""
	getter  *getter[K, V]
	sources []string
	// window is set on tables of windowed aggregations: it tells Suppress
	// when a window closes.
	window *windowInfo
}

// Name returns the name of the node producing the table's updates.
func (t Table[K, V]) Name() string { return t.node }

// StoreName returns the name of the table's store, or "" if the table is
// not materialized (Materialized names one).
func (t Table[K, V]) StoreName() string { return t.store }

type storeLookup interface{ Store(name string) any }

// getter looks up a table's current value by key, from inside a task.
type getter[K, V any] struct {
	stores []string // to connect to the processor doing the lookup
	open   func(ctx storeLookup) (func(K) (V, int64, bool, error), error)
}

func storeGetter[K, V any](store string, ks serde.Serde[K], vs serde.Serde[V]) *getter[K, V] {
	return &getter[K, V]{stores: []string{store}, open: func(ctx storeLookup) (func(K) (V, int64, bool, error), error) {
		kv, err := openKV(ctx, store, ks, vs)
		if err != nil {
			return nil, err
		}
		return kv.get, nil
	}}
}

func (t Table[K, V]) connect(proc string) {
	if t.getter == nil {
		t.b.errorf("table %q cannot be looked up (windowed tables cannot be joined)", t.node)
		return
	}
	for _, s := range t.getter.stores {
		t.b.tb.ConnectStore(s, proc)
	}
}

// TableOf reads topic as a table with the given serdes (Kafka Streams'
// builder.table): each record is the key's new value, a null value deletes
// it. The table is materialized in a store (named by Materialized, else
// "<source name>-store"), whose changelog is "<app>-<store>-changelog".
func TableOf[K, V any](b *Builder, topic string, ks serde.Serde[K], vs serde.Serde[V], opts ...Option) Table[K, V] {
	o := b.collect(ops.tableOf, opts)
	src := b.name(o, "KTABLE-SOURCE")
	topology.AddSource(b.tb, src, topology.Source[K, V]{Topics: []string{topic}, KeySerde: ks, ValueSerde: vs})
	name := b.suffixed(o, "materialize", "KTABLE-MATERIALIZE")
	store := o.storeName
	if store == "" {
		store = src + "-store"
	}
	// The raw processor sees nulls as nil, which typed processors cannot.
	topology.AddProcessor(b.tb, name, func() topology.Processor[any, any, any, any] {
		return &tableSource[K, V]{store: store, ks: ks, vs: vs}
	}, src)
	b.tb.AddStore(kvSpec(store, o), name)
	return Table[K, V]{b: b, node: name, ks: ks, vs: vs, store: store, getter: storeGetter(store, ks, vs), sources: []string{src}}
}

type tableSource[K, V any] struct {
	store string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
	w     tableWriter[K, V]
}

func (p *tableSource[K, V]) Init(ctx topology.Context[any, any]) error {
	return p.w.init(typedCtx[K, change[V]]{ctx}, p.store, p.ks, p.vs)
}

func (p *tableSource[K, V]) Process(r topology.Record[any, any]) error {
	k, _ := r.Key.(K)
	if r.Value == nil {
		return p.w.write(k, nil, r.Timestamp, r.Headers)
	}
	v := r.Value.(V)
	return p.w.write(k, &v, r.Timestamp, r.Headers)
}

func (p *tableSource[K, V]) Close() error { return nil }

// typedCtx narrows a raw context for typed helpers.
type typedCtx[K, V any] struct{ topology.Context[any, any] }

func (c typedCtx[K, V]) Forward(r topology.Record[K, V]) {
	c.Context.Forward(topology.Record[any, any]{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers})
}

func (c typedCtx[K, V]) ForwardTo(child string, r topology.Record[K, V]) {
	c.Context.ForwardTo(child, topology.Record[any, any]{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers})
}

// mapTable derives a table whose value for each key is f(key, parent value),
// or absent when f says so (filters). Materialized stores the result.
func mapTable[K, V, V2 any](t Table[K, V], prefix string, f func(K, V) (V2, bool), vs2 serde.Serde[V2], o *options) Table[K, V2] {
	b := t.b
	name := b.name(o, prefix)
	apply := func(k K, v *V) *V2 {
		if v == nil {
			return nil
		}
		if r, ok := f(k, *v); ok {
			return &r
		}
		return nil
	}
	addFunc(b, name, func(ctx topology.Context[K, change[V2]], r topology.Record[K, change[V]]) error {
		n, old := apply(r.Key, r.Value.newPtr()), apply(r.Key, r.Value.oldPtr())
		if n == nil && old == nil {
			return nil
		}
		ctx.Forward(topology.WithValue(r, mkChange(n, old)))
		return nil
	}, t.node)
	out := Table[K, V2]{b: b, node: name, ks: t.ks, vs: vs2, sources: t.sources}
	if vs2 == nil {
		out.vs = serde.Default[V2]()
	}
	if t.getter != nil {
		pg := t.getter
		out.getter = &getter[K, V2]{stores: pg.stores, open: func(ctx storeLookup) (func(K) (V2, int64, bool, error), error) {
			get, err := pg.open(ctx)
			if err != nil {
				return nil, err
			}
			return func(k K) (V2, int64, bool, error) {
				var zero V2
				v, ts, ok, err := get(k)
				if !ok || err != nil {
					return zero, ts, false, err
				}
				r, ok := f(k, v)
				return r, ts, ok, nil
			}, nil
		}}
	}
	if o.storeName != "" {
		return materialize(out, o)
	}
	return out
}

func mkChange[V any](n, old *V) change[V] {
	var c change[V]
	if n != nil {
		c.New, c.HasNew = *n, true
	}
	if old != nil {
		c.Old, c.HasOld = *old, true
	}
	return c
}

// materialize stores t in the store o names and makes that the table's.
func materialize[K, V any](t Table[K, V], o *options) Table[K, V] {
	b := t.b
	name := b.suffixed(o, "materialize", "KTABLE-MATERIALIZE")
	store, ks, vs := o.storeName, t.ks, t.vs
	if ks == nil {
		ks = serde.Default[K]()
	}
	topology.AddProcessor(b.tb, name, func() topology.Processor[K, change[V], K, change[V]] {
		return &materializer[K, V]{store: store, ks: ks, vs: vs}
	}, t.node)
	b.tb.AddStore(kvSpec(store, o), name)
	t.node, t.store, t.getter = name, store, storeGetter(store, ks, vs)
	return t
}

type materializer[K, V any] struct {
	store string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
	w     tableWriter[K, V]
}

func (p *materializer[K, V]) Init(ctx topology.Context[K, change[V]]) error {
	return p.w.init(ctx, p.store, p.ks, p.vs)
}

func (p *materializer[K, V]) Process(r topology.Record[K, change[V]]) error {
	return p.w.write(r.Key, r.Value.newPtr(), r.Timestamp, r.Headers)
}

func (p *materializer[K, V]) Close() error { return nil }

// Filter keeps the keys whose value satisfies keep; others read as absent.
// Options: Named, Materialized.
func (t Table[K, V]) Filter(keep func(K, V) bool, opts ...Option) Table[K, V] {
	return mapTable(t, "KTABLE-FILTER", func(k K, v V) (V, bool) { return v, keep(k, v) }, t.vs, t.b.collect(ops.tableFilter, opts))
}

// FilterNot drops the keys whose value satisfies drop.
func (t Table[K, V]) FilterNot(drop func(K, V) bool, opts ...Option) Table[K, V] {
	return mapTable(t, "KTABLE-FILTER", func(k K, v V) (V, bool) { return v, !drop(k, v) }, t.vs, t.b.collect(ops.tableFilterNot, opts))
}

// MapTableValues derives a table with f applied to every value (Kafka
// Streams' KTable.mapValues). Options: Named, Materialized, WithValueSerde.
func MapTableValues[K, V, V2 any](t Table[K, V], f func(V) V2, opts ...Option) Table[K, V2] {
	o := t.b.collect(ops.mapTableValues, opts)
	_, vs2 := serdesOf[K, V2](t.b, o, nil, nil)
	return mapTable(t, "KTABLE-MAPVALUES", func(_ K, v V) (V2, bool) { return f(v), true }, vs2, o)
}

// ToStream turns the table's updates into a stream of new values. A deleted
// key arrives as a null value: a tombstone in a sink topic, the zero V for a
// function downstream.
func (t Table[K, V]) ToStream(opts ...Option) Stream[K, V] {
	b := t.b
	name := b.name(b.collect(ops.toStream, opts), "KTABLE-TOSTREAM")
	// Typed, so that an update travels unboxed to typed children (a
	// windowed count's updates to a Map: two allocations per update
	// boxed); a deletion goes boxed, as the null a Record[K, V] cannot
	// hold.
	topology.AddProcessor(b.tb, name, topology.ProcessorFunc[K, change[V], K, V](func(ctx topology.Context[K, V], r topology.Record[K, change[V]]) error {
		out := topology.Record[K, V]{Key: r.Key, Value: r.Value.New, Timestamp: r.Timestamp, Headers: r.Headers}
		if !r.Value.HasNew {
			topology.ForwardNullValue(ctx, out)
			return nil
		}
		ctx.Forward(out)
		return nil
	}).Supplier(), t.node)
	return Stream[K, V]{b: b, node: name, ks: t.ks, vs: t.vs, sources: slices.Clone(t.sources)}
}

// GroupTableBy regroups a table by a new key and value computed from each
// entry (Kafka Streams' KTable.groupBy). Each update is sent through a
// repartition topic as a subtraction of the old entry from its group and an
// addition of the new one to its group, for GroupedTable's aggregations.
// Options: Named (the repartition topic's name), WithSerdes (its serdes).
func GroupTableBy[K, V, K2, V2 any](t Table[K, V], f func(K, V) (K2, V2), opts ...Option) GroupedTable[K2, V2] {
	b := t.b
	o := b.collect(ops.groupTableBy, opts)
	name := b.name(o, "KTABLE-SELECT")
	addFunc(b, name, func(ctx topology.Context[K2, change[V2]], r topology.Record[K, change[V]]) error {
		// Subtract first, as Kafka Streams does, so a key that stays in its
		// group never transiently counts twice.
		if r.Value.HasOld {
			k2, v2 := f(r.Key, r.Value.Old)
			ctx.Forward(topology.WithKeyValue(r, k2, change[V2]{Old: v2, HasOld: true}))
		}
		if r.Value.HasNew {
			k2, v2 := f(r.Key, r.Value.New)
			ctx.Forward(topology.WithKeyValue(r, k2, change[V2]{New: v2, HasNew: true}))
		}
		return nil
	}, t.node)
	ks, vs := serdesOf[K2, V2](b, o, nil, nil)
	base := name
	if o.name != "" {
		base = o.name
	}
	s := Stream[K2, change[V2]]{b: b, node: name, ks: ks, vs: changeSerde[V2]{vs}, sources: t.sources}
	rs := repartition(s, &options{partitions: o.partitions}, base)
	return GroupedTable[K2, V2]{b: b, node: rs.node, ks: ks, vs: vs, sources: rs.sources}
}
