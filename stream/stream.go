package stream

import (
	"slices"

	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// Stream is an unbounded sequence of key-value records (Kafka Streams'
// KStream). Its methods keep its types; operations that change them are
// functions (Map, MapValues, FlatMap, SelectKey, Process, …). A Stream is a
// handle to a node of the builder's graph: operations add nodes after it and
// may be applied to one Stream many times (fan-out).
type Stream[K, V any] struct {
	b    *Builder
	node string
	ks   serde.Serde[K] // nil: serde.Default
	vs   serde.Serde[V]
	// rekeyed is set once an operation may have changed keys since the last
	// source: grouping or joining such a stream goes through a repartition
	// topic first.
	rekeyed bool
	// sources are the source nodes upstream, for co-partitioning checks.
	sources []string
}

// Name returns the name of the node producing the stream.
func (s Stream[K, V]) Name() string { return s.node }

func (s Stream[K, V]) derive(node string) Stream[K, V] {
	s.node = node
	return s
}

func derive[K, V, K2, V2 any](s Stream[K, V], node string, rekeyed bool) Stream[K2, V2] {
	out := Stream[K2, V2]{b: s.b, node: node, rekeyed: s.rekeyed || rekeyed, sources: s.sources}
	if ks, ok := any(s.ks).(serde.Serde[K2]); ok && !rekeyed {
		out.ks = ks
	}
	return out
}

func addFunc[KI, VI, KO, VO any](b *Builder, name string, f topology.ProcessorFunc[KI, VI, KO, VO], parents ...string) {
	topology.AddProcessor(b.tb, name, f.Supplier(), parents...)
}

// From reads topic as a stream with the given serdes (Kafka Streams'
// builder.stream with Consumed.with). Options: Named, WithTimestamp.
func From[K, V any](b *Builder, topic string, ks serde.Serde[K], vs serde.Serde[V], opts ...Option) Stream[K, V] {
	o := b.collect(ops.from, opts)
	name := b.name(o, "KSTREAM-SOURCE")
	src := topology.Source[K, V]{Topics: []string{topic}, KeySerde: ks, ValueSerde: vs}
	if o.timestamp != nil {
		f, ok := o.timestamp.(func(K, V, int64) int64)
		if !ok {
			b.errorf("source %q: timestamp extractor %T does not match the source's types", name, o.timestamp)
		}
		src.Timestamp = f
	}
	topology.AddSource(b.tb, name, src)
	return Stream[K, V]{b: b, node: name, ks: ks, vs: vs, sources: []string{name}}
}

// Filter keeps the records for which keep returns true.
func (s Stream[K, V]) Filter(keep func(K, V) bool, opts ...Option) Stream[K, V] {
	return s.filter(keep, s.b.collect(ops.filter, opts))
}

// FilterNot drops the records for which drop returns true.
func (s Stream[K, V]) FilterNot(drop func(K, V) bool, opts ...Option) Stream[K, V] {
	return s.filter(func(k K, v V) bool { return !drop(k, v) }, s.b.collect(ops.filterNot, opts))
}

func (s Stream[K, V]) filter(keep func(K, V) bool, o *options) Stream[K, V] {
	name := s.b.name(o, "KSTREAM-FILTER")
	addFunc(s.b, name, func(ctx topology.Context[K, V], r topology.Record[K, V]) error {
		if keep(r.Key, r.Value) {
			ctx.Forward(r)
		}
		return nil
	}, s.node)
	return s.derive(name)
}

// Peek calls f for each record and passes the record on unchanged.
func (s Stream[K, V]) Peek(f func(K, V), opts ...Option) Stream[K, V] {
	name := s.b.name(s.b.collect(ops.peek, opts), "KSTREAM-PEEK")
	addFunc(s.b, name, func(ctx topology.Context[K, V], r topology.Record[K, V]) error {
		f(r.Key, r.Value)
		ctx.Forward(r)
		return nil
	}, s.node)
	return s.derive(name)
}

// ForEach calls f for each record; the stream ends there.
func (s Stream[K, V]) ForEach(f func(K, V), opts ...Option) {
	name := s.b.name(s.b.collect(ops.forEach, opts), "KSTREAM-FOREACH")
	addFunc(s.b, name, func(ctx topology.Context[K, V], r topology.Record[K, V]) error {
		f(r.Key, r.Value)
		return nil
	}, s.node)
}

// Merge interleaves s and other, in the order their records are processed.
func (s Stream[K, V]) Merge(other Stream[K, V], opts ...Option) Stream[K, V] {
	name := s.b.name(s.b.collect(ops.merge, opts), "KSTREAM-MERGE")
	addFunc(s.b, name, func(ctx topology.Context[K, V], r topology.Record[K, V]) error {
		ctx.Forward(r)
		return nil
	}, s.node, other.node)
	out := s.derive(name)
	out.rekeyed = s.rekeyed || other.rekeyed
	out.sources = append(slices.Clone(s.sources), other.sources...)
	return out
}

// To writes the stream to topic (Kafka Streams' to with Produced). Options:
// Named, WithSerdes.
func (s Stream[K, V]) To(topic string, opts ...Option) {
	o := s.b.collect(ops.to, opts)
	ks, vs := serdesOf(s.b, o, s.ks, s.vs)
	name := s.b.name(o, "KSTREAM-SINK")
	topology.AddSink(s.b.tb, name, topology.Sink[K, V]{Topic: topic, KeySerde: ks, ValueSerde: vs}, s.node)
}

// ToDynamic writes each record to the topic choose returns for it (Kafka
// Streams' to with a TopicNameExtractor). The topics must exist.
func (s Stream[K, V]) ToDynamic(choose func(key K, value V) string, opts ...Option) {
	o := s.b.collect(ops.toDynamic, opts)
	ks, vs := serdesOf(s.b, o, s.ks, s.vs)
	name := s.b.name(o, "KSTREAM-SINK")
	topology.AddSink(s.b.tb, name, topology.Sink[K, V]{
		TopicFunc: func(r topology.Record[K, V]) string { return choose(r.Key, r.Value) },
		KeySerde:  ks, ValueSerde: vs,
	}, s.node)
}

// Repartition sends the stream through an internal topic
// "<application id>-<name>-repartition", partitioned by key, and reads it
// back: downstream runs in a new sub-topology whose tasks each see all
// records of their keys. Options: Named (the topic's name), WithPartitions,
// WithSerdes.
func (s Stream[K, V]) Repartition(opts ...Option) Stream[K, V] {
	o := s.b.collect(ops.repartition, opts)
	base := s.b.name(o, "KSTREAM-REPARTITION")
	return repartition(s, o, base)
}

// repartition writes s to the repartition topic "<base>-repartition" and
// reads it back.
func repartition[K, V any](s Stream[K, V], o *options, base string) Stream[K, V] {
	s.b.seq += 2 // the sink's and source's numbers, as for generated names
	return repartitionAs(s, o, base)
}

// repartitionAs is repartition with no sequence numbers taken: its nodes
// are named after base.
func repartitionAs[K, V any](s Stream[K, V], o *options, base string) Stream[K, V] {
	b := s.b
	ks, vs := serdesOf(b, o, s.ks, s.vs)
	topic := base + "-repartition"
	b.tb.AddRepartitionTopic(topic, o.partitions)
	sink := base + "-repartition-sink"
	topology.AddSink(b.tb, sink, topology.Sink[K, V]{Topic: topic, KeySerde: ks, ValueSerde: vs}, s.node)
	src := base + "-repartition-source"
	topology.AddSource(b.tb, src, topology.Source[K, V]{Topics: []string{topic}, KeySerde: ks, ValueSerde: vs})
	return Stream[K, V]{b: b, node: src, ks: ks, vs: vs, sources: []string{src}}
}

// Branch is one branch of a Split: records for which Predicate holds (and no
// earlier branch's) go to it.
type Branch[K, V any] struct {
	Name      string
	Predicate func(K, V) bool
}

// Split routes each record to the first branch whose predicate holds, and to
// the default branch (named "default") if none does and withDefault is set;
// other records are dropped. The branches are returned by name; their nodes
// are named "<split name>-<branch name>" (Kafka Streams' split/BranchedKStream).
func (s Stream[K, V]) Split(branches []Branch[K, V], withDefault bool, opts ...Option) map[string]Stream[K, V] {
	o := s.b.collect(ops.split, opts)
	name := s.b.name(o, "KSTREAM-BRANCH")
	prefix := name + "-"
	if o.name == "" {
		prefix = name + "-"
	}
	children := make([]string, len(branches))
	for i, br := range branches {
		children[i] = prefix + br.Name
	}
	def := ""
	if withDefault {
		def = prefix + "default"
	}
	preds := slices.Clone(branches)
	addFunc(s.b, name, func(ctx topology.Context[K, V], r topology.Record[K, V]) error {
		for i, br := range preds {
			if br.Predicate(r.Key, r.Value) {
				ctx.ForwardTo(children[i], r)
				return nil
			}
		}
		if def != "" {
			ctx.ForwardTo(def, r)
		}
		return nil
	}, s.node)
	out := map[string]Stream[K, V]{}
	pass := func(child, key string) {
		addFunc(s.b, child, func(ctx topology.Context[K, V], r topology.Record[K, V]) error {
			ctx.Forward(r)
			return nil
		}, name)
		out[key] = s.derive(child)
	}
	for i, br := range branches {
		if _, dup := out[br.Name]; dup {
			s.b.errorf("split %q: branch %q named twice", name, br.Name)
			continue
		}
		pass(children[i], br.Name)
	}
	if withDefault {
		pass(def, "default")
	}
	return out
}

// Map turns each record into a new key and value. Grouping or joining the
// result repartitions it, as the key may have changed.
func Map[K, V, K2, V2 any](s Stream[K, V], f func(K, V) (K2, V2), opts ...Option) Stream[K2, V2] {
	name := s.b.name(s.b.collect(ops.mapOp, opts), "KSTREAM-MAP")
	addFunc(s.b, name, func(ctx topology.Context[K2, V2], r topology.Record[K, V]) error {
		k, v := f(r.Key, r.Value)
		ctx.Forward(topology.WithKeyValue(r, k, v))
		return nil
	}, s.node)
	return derive[K, V, K2, V2](s, name, true)
}

// MapValues turns each value into a new one; keys stay, so no repartitioning
// follows.
func MapValues[K, V, V2 any](s Stream[K, V], f func(V) V2, opts ...Option) Stream[K, V2] {
	name := s.b.name(s.b.collect(ops.mapValues, opts), "KSTREAM-MAPVALUES")
	addFunc(s.b, name, func(ctx topology.Context[K, V2], r topology.Record[K, V]) error {
		ctx.Forward(topology.WithValue(r, f(r.Value)))
		return nil
	}, s.node)
	return derive[K, V, K, V2](s, name, false)
}

// FlatMap turns each record into zero or more records.
func FlatMap[K, V, K2, V2 any](s Stream[K, V], f func(K, V) []KeyValue[K2, V2], opts ...Option) Stream[K2, V2] {
	name := s.b.name(s.b.collect(ops.flatMap, opts), "KSTREAM-FLATMAP")
	addFunc(s.b, name, func(ctx topology.Context[K2, V2], r topology.Record[K, V]) error {
		for _, kv := range f(r.Key, r.Value) {
			ctx.Forward(topology.WithKeyValue(r, kv.Key, kv.Value))
		}
		return nil
	}, s.node)
	return derive[K, V, K2, V2](s, name, true)
}

// FlatMapValues turns each value into zero or more values with the same key.
func FlatMapValues[K, V, V2 any](s Stream[K, V], f func(V) []V2, opts ...Option) Stream[K, V2] {
	name := s.b.name(s.b.collect(ops.flatMapValues, opts), "KSTREAM-FLATMAPVALUES")
	addFunc(s.b, name, func(ctx topology.Context[K, V2], r topology.Record[K, V]) error {
		for _, v := range f(r.Value) {
			ctx.Forward(topology.WithValue(r, v))
		}
		return nil
	}, s.node)
	return derive[K, V, K, V2](s, name, false)
}

// SelectKey gives each record a new key computed from it.
func SelectKey[K, V, K2 any](s Stream[K, V], f func(K, V) K2, opts ...Option) Stream[K2, V] {
	name := s.b.name(s.b.collect(ops.selectKey, opts), "KSTREAM-KEY-SELECT")
	addFunc(s.b, name, func(ctx topology.Context[K2, V], r topology.Record[K, V]) error {
		ctx.Forward(topology.WithKeyValue(r, f(r.Key, r.Value), r.Value))
		return nil
	}, s.node)
	out := derive[K, V, K2, V](s, name, true)
	out.vs = s.vs
	return out
}

// Process runs a processor of the Processor API on the stream, connected to
// the named stores (which must have been added to b.Topology()). Its output
// is a stream whose key may have changed.
func Process[K, V, K2, V2 any](s Stream[K, V], supply func() topology.Processor[K, V, K2, V2], stores []string, opts ...Option) Stream[K2, V2] {
	name := s.b.name(s.b.collect(ops.process, opts), "KSTREAM-PROCESSOR")
	topology.AddProcessor(s.b.tb, name, supply, s.node)
	for _, st := range stores {
		s.b.tb.ConnectStore(st, name)
	}
	return derive[K, V, K2, V2](s, name, true)
}
