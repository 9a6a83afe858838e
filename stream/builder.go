package stream

import (
	"errors"
	"fmt"

	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// Builder builds a topology with the DSL. Operations record nodes in it as
// they are called; Build checks and cuts the result. A Builder is not safe
// for concurrent use.
type Builder struct {
	tb    *topology.Builder
	seq   int // numbers unnamed nodes: KSTREAM-FILTER-0000000003
	names map[string]bool
	errs  []error
	// globals maps a global table's store to its key and value serdes.
	globals map[string]bool
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{tb: topology.NewBuilder(), names: map[string]bool{}, globals: map[string]bool{}}
}

// Build returns the topology, or every problem found in it.
func (b *Builder) Build() (*topology.Topology, error) {
	t, err := b.tb.Build()
	return t, errors.Join(append(b.errs, err)...)
}

// Topology returns the underlying topology builder, to mix Processor API
// nodes with the DSL.
func (b *Builder) Topology() *topology.Builder { return b.tb }

func (b *Builder) errorf(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf("stream: "+format, args...))
}

// name returns the user's name for a node, or the next generated one:
// "<PREFIX>-<10-digit sequence number>", Kafka Streams' scheme. Every call
// consumes a number, so the names of a topology rebuilt from the same code
// are the same.
func (b *Builder) name(o *options, prefix string) string {
	n := b.seq
	b.seq++
	if o != nil && o.name != "" {
		return o.name
	}
	return fmt.Sprintf("%s-%010d", prefix, n)
}

// suffixed names a node derived from a named operation ("orders-filter"),
// or generates one.
func (b *Builder) suffixed(o *options, suffix, prefix string) string {
	n := b.seq
	b.seq++
	if o != nil && o.name != "" {
		return o.name + "-" + suffix
	}
	return fmt.Sprintf("%s-%010d", prefix, n)
}

// serdesOf picks the serdes of an operation: the options', else the given
// ones, else the defaults for the types.
func serdesOf[K, V any](b *Builder, o *options, k serde.Serde[K], v serde.Serde[V]) (serde.Serde[K], serde.Serde[V]) {
	if o == nil {
		o = &options{}
	}
	if _, ok := o.keySerde.(serde.Serde[K]); o.keySerde != nil && !ok {
		var zero K
		b.errorf("key serde %T does not handle %T", o.keySerde, zero)
	}
	if _, ok := o.valueSerde.(serde.Serde[V]); o.valueSerde != nil && !ok {
		var zero V
		b.errorf("value serde %T does not handle %T", o.valueSerde, zero)
	}
	return serdesOfQuiet(o, k, v)
}

// serdesOfQuiet is serdesOf without reporting mismatches (they are
// reported once, where the serdes are put to use).
func serdesOfQuiet[K, V any](o *options, k serde.Serde[K], v serde.Serde[V]) (serde.Serde[K], serde.Serde[V]) {
	if ks, ok := o.keySerde.(serde.Serde[K]); ok {
		k = ks
	}
	if vs, ok := o.valueSerde.(serde.Serde[V]); ok {
		v = vs
	}
	if k == nil {
		k = serde.Default[K]()
	}
	if v == nil {
		v = serde.Default[V]()
	}
	return k, v
}

// KeyValue is a key and a value, as returned by FlatMap's function.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// KV makes a KeyValue.
func KV[K, V any](k K, v V) KeyValue[K, V] { return KeyValue[K, V]{Key: k, Value: v} }
