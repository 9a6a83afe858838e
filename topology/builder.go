package topology

import (
	"errors"
	"fmt"
	"slices"
)

// ErrInvalidTopology is wrapped by every error Build reports.
var ErrInvalidTopology = errors.New("topology: invalid topology")

type nodeKind int

const (
	sourceNode nodeKind = iota
	processorNode
	sinkNode
)

// node is one vertex of the graph as the builder holds it; tasks instantiate
// it (processor suppliers are called once per task).
type node struct {
	name     string
	kind     nodeKind
	index    int // insertion order, which fixes sub-topology and print order
	parents  []*node
	children []*node
	global   bool // part of a global store's update graph

	// sources
	topics []string
	decode func(r InputRecord) (Record[any, any], error)
	stamp  func(r Record[any, any], recordTimestamp int64) int64
	ingest func(in *nodeInst) func(InputRecord) error // makes nodeInst.ingest

	// processors
	supply func() rawProcessor
	stores []string

	// sinks
	topic     string
	topicFunc func(r Record[any, any]) string
	encode    func(in *nodeInst, r Record[any, any]) (k, v []byte, err error)
	sinkIn    func(in *nodeInst) any // makes nodeInst.typed
}

// Builder assembles a processor graph: sources read topics, processors
// transform records, sinks write topics, and state stores are connected to the
// processors that use them. Mistakes are collected and reported together by
// Build. A Builder is not safe for concurrent use.
type Builder struct {
	nodes       []*node
	byName      map[string]*node
	stores      map[string]*storeEntry
	storeOrder  []string
	repartition map[string]int // base name -> partitions (0: inherit)
	copart      [][]string     // groups of source node names
	errs        []error
}

type storeEntry struct {
	spec       StoreSpec
	processors []string
	global     bool
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{
		byName:      map[string]*node{},
		stores:      map[string]*storeEntry{},
		repartition: map[string]int{},
	}
}

func (b *Builder) errorf(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidTopology}, args...)...))
}

func (b *Builder) add(n *node, parents []string) {
	if n.name == "" {
		b.errorf("a node has an empty name")
		return
	}
	if _, dup := b.byName[n.name]; dup {
		b.errorf("node %q added twice", n.name)
		return
	}
	n.index = len(b.nodes)
	b.nodes = append(b.nodes, n)
	b.byName[n.name] = n
	for _, p := range parents {
		pn, ok := b.byName[p]
		switch {
		case !ok:
			b.errorf("node %q: parent %q does not exist (add parents first)", n.name, p)
		case pn.kind == sinkNode:
			b.errorf("node %q: parent %q is a sink", n.name, p)
		default:
			pn.children = append(pn.children, n)
			n.parents = append(n.parents, pn)
		}
	}
}

// Source describes a source node.
type Source[K, V any] struct {
	// Topics are read by the source. Internal repartition topics are named
	// by their base name (see Builder.AddRepartitionTopic).
	Topics     []string
	KeySerde   Serde[K]
	ValueSerde Serde[V]
	// Timestamp extracts a record's timestamp (Kafka Streams'
	// default.timestamp.extractor). Default: the record's own timestamp.
	// Records given a negative timestamp are dropped and counted.
	Timestamp func(key K, value V, recordTimestamp int64) int64
}

// AddSource adds a source node reading src.Topics.
func AddSource[K, V any](b *Builder, name string, src Source[K, V]) {
	if len(src.Topics) == 0 {
		b.errorf("source %q reads no topic", name)
	}
	if src.KeySerde == nil || src.ValueSerde == nil {
		b.errorf("source %q has no key or value serde", name)
		return
	}
	for _, n := range b.nodes {
		for _, t := range n.topics {
			if slices.Contains(src.Topics, t) {
				b.errorf("topic %q is read by both source %q and source %q", t, n.name, name)
			}
		}
	}
	ks, vs := src.KeySerde, src.ValueSerde
	n := &node{name: name, kind: sourceNode, topics: slices.Clone(src.Topics)}
	n.decode = func(in InputRecord) (Record[any, any], error) {
		r := Record[any, any]{Timestamp: in.Timestamp, Headers: in.Headers}
		if in.Key != nil {
			k, err := ks.Deserialize(in.Key)
			if err != nil {
				return r, fmt.Errorf("topology: source %q: key of %s[%d]@%d: %w", name, in.Topic, in.Partition, in.Offset, err)
			}
			r.Key = k
		}
		if in.Value != nil {
			v, err := vs.Deserialize(in.Value)
			if err != nil {
				return r, fmt.Errorf("topology: source %q: value of %s[%d]@%d: %w", name, in.Topic, in.Partition, in.Offset, err)
			}
			r.Value = v
		}
		return r, nil
	}
	if src.Timestamp != nil {
		f := src.Timestamp
		n.stamp = func(r Record[any, any], ts int64) int64 {
			k, _ := asType[K](r.Key, "key")
			v, _ := asType[V](r.Value, "value")
			return f(k, v, ts)
		}
	}
	n.ingest = func(in *nodeInst) func(InputRecord) error {
		fwd := newForwarder[K, V](in)
		t := in.task
		return func(rec InputRecord) error {
			if rec.Key == nil || rec.Value == nil {
				return t.ingestBoxed(in, rec)
			}
			r, err := decodeTyped(n, ks, vs, rec)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrDeserialization, err)
			}
			ts := rec.Timestamp
			if src.Timestamp != nil {
				ts = src.Timestamp(r.Key, r.Value, ts)
			}
			if !t.begin(rec, ts) {
				return nil
			}
			r.Timestamp = ts
			fwd.forward(r)
			return nil
		}
	}
	b.add(n, nil)
}

// decodeTyped deserializes in's key and value, both present, for source
// n; a serde that panics on bad bytes is a deserialization error like one
// that returns an error.
func decodeTyped[K, V any](n *node, ks Serde[K], vs Serde[V], in InputRecord) (r Record[K, V], err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("serde panicked: %v", p)
		}
	}()
	r.Headers = in.Headers
	if r.Key, err = ks.Deserialize(in.Key); err != nil {
		return r, fmt.Errorf("topology: source %q: key of %s[%d]@%d: %w", n.name, in.Topic, in.Partition, in.Offset, err)
	}
	if r.Value, err = vs.Deserialize(in.Value); err != nil {
		return r, fmt.Errorf("topology: source %q: value of %s[%d]@%d: %w", n.name, in.Topic, in.Partition, in.Offset, err)
	}
	return r, nil
}

// AddProcessor adds a processor node that receives the records of parents.
// supply is called once per task to make that task's instance.
func AddProcessor[KIn, VIn, KOut, VOut any](b *Builder, name string, supply func() Processor[KIn, VIn, KOut, VOut], parents ...string) {
	if len(parents) == 0 {
		b.errorf("processor %q has no parent", name)
	}
	b.add(&node{name: name, kind: processorNode, supply: func() rawProcessor { return adapt(supply()) }}, parents)
}

// Sink describes a sink node.
type Sink[K, V any] struct {
	// Topic receives every record, unless TopicFunc is set, in which case it
	// chooses a topic per record.
	Topic      string
	TopicFunc  func(r Record[K, V]) string
	KeySerde   Serde[K]
	ValueSerde Serde[V]
}

// AddSink adds a sink node writing the records of parents to a topic.
func AddSink[K, V any](b *Builder, name string, sink Sink[K, V], parents ...string) {
	if len(parents) == 0 {
		b.errorf("sink %q has no parent", name)
	}
	if sink.Topic == "" && sink.TopicFunc == nil {
		b.errorf("sink %q has no topic", name)
	}
	if sink.KeySerde == nil || sink.ValueSerde == nil {
		b.errorf("sink %q has no key or value serde", name)
		return
	}
	ks, vs := sink.KeySerde, sink.ValueSerde
	n := &node{name: name, kind: sinkNode, topic: sink.Topic}
	ka, _ := ks.(Appender[K])
	va, _ := vs.(Appender[V])
	// encode serializes k and v, unless they are null (!hasK, !hasV), into
	// in's buffers where the serdes can append.
	encode := func(in *nodeInst, k K, hasK bool, v V, hasV bool) (kb, vb []byte, err error) {
		if hasK {
			if ka != nil {
				kb, err = ka.Append(in.keyBuf[:0], k)
				in.keyBuf = kb
			} else {
				kb, err = ks.Serialize(k)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("topology: sink %q: key: %w", name, err)
			}
		}
		if hasV {
			if va != nil {
				vb, err = va.Append(in.valueBuf[:0], v)
				in.valueBuf = vb
			} else {
				vb, err = vs.Serialize(v)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("topology: sink %q: value: %w", name, err)
			}
			if vb == nil {
				vb = []byte{} // a non-null value never becomes a tombstone
			}
		}
		return kb, vb, nil
	}
	n.encode = func(in *nodeInst, r Record[any, any]) (kb, vb []byte, err error) {
		k, err := asType[K](r.Key, "key")
		if err != nil {
			return nil, nil, err
		}
		v, err := asType[V](r.Value, "value")
		if err != nil {
			return nil, nil, err
		}
		return encode(in, k, r.Key != nil, v, r.Value != nil)
	}
	if sink.TopicFunc != nil {
		f := sink.TopicFunc
		n.topicFunc = func(r Record[any, any]) string {
			k, _ := asType[K](r.Key, "key")
			v, _ := asType[V](r.Value, "value")
			return f(Record[K, V]{Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
		}
	}
	n.sinkIn = func(in *nodeInst) any {
		return func(r Record[K, V]) {
			if in.stopped() {
				return
			}
			// A Record[K, V] holds a null only where K or V is an
			// interface type: the boxed path's nil test, unboxed.
			kb, vb, err := encode(in, r.Key, !isNil(r.Key), r.Value, !isNil(r.Value))
			topic := ""
			if err == nil && sink.TopicFunc != nil {
				topic = sink.TopicFunc(r)
			}
			in.send(kb, vb, err, topic, r.Timestamp, r.Headers)
		}
	}
	b.add(n, parents)
}

// isNil reports whether v boxed is a nil interface: v is a nil value of an
// interface type.
func isNil[T any](v T) bool { return any(v) == nil }

// AddRepartitionTopic declares an internal repartition topic by its base name
// (conventionally "<name>-repartition"); its full name is
// "<application id>-<base>". partitions 0 means the topic gets as many
// partitions as the largest source topic of the sub-topology that writes it.
func (b *Builder) AddRepartitionTopic(base string, partitions int) {
	if _, dup := b.repartition[base]; dup {
		b.errorf("repartition topic %q declared twice", base)
	}
	b.repartition[base] = partitions
}

// AddStore adds a state store and connects it to processors.
func (b *Builder) AddStore(spec StoreSpec, processors ...string) {
	if err := spec.validate(); err != nil {
		b.errs = append(b.errs, err)
		return
	}
	if _, dup := b.stores[spec.Name]; dup {
		b.errorf("store %q added twice", spec.Name)
		return
	}
	b.stores[spec.Name] = &storeEntry{spec: spec}
	b.storeOrder = append(b.storeOrder, spec.Name)
	b.ConnectStore(spec.Name, processors...)
}

// ConnectStore gives processors access to an existing store.
func (b *Builder) ConnectStore(store string, processors ...string) {
	s, ok := b.stores[store]
	if !ok {
		b.errorf("store %q does not exist", store)
		return
	}
	for _, p := range processors {
		n, ok := b.byName[p]
		if !ok || n.kind != processorNode {
			b.errorf("store %q: %q is not a processor", store, p)
			continue
		}
		if !slices.Contains(n.stores, store) {
			n.stores = append(n.stores, store)
			s.processors = append(s.processors, p)
		}
	}
}

// Copartition records that the topics read by the given source nodes must have
// the same number of partitions and be partitioned alike (the two sides of a
// join). Build checks what it can; Topology.ResolvePartitions checks the rest.
func (b *Builder) Copartition(sources ...string) {
	for _, s := range sources {
		if n, ok := b.byName[s]; !ok || n.kind != sourceNode {
			b.errorf("copartition: %q is not a source", s)
			return
		}
	}
	b.copart = append(b.copart, slices.Clone(sources))
}

// AddGlobalStore adds a global store: every instance holds all of it, fed from
// every partition of topic by the processor supplied, which typically writes
// each record into the store. Global stores are readable (and only readable)
// from every processor they are connected to with ConnectStore.
//
// The processor's input types may differ from the source's only as any:
// a Processor[any, any, …] sees nulls (tombstones) as nil.
func AddGlobalStore[K, V, KP, VP any](b *Builder, spec StoreSpec, sourceName string, src Source[K, V], processorName string, supply func() Processor[KP, VP, struct{}, struct{}]) {
	spec.Logging = false // the source topic is the store's changelog
	AddSource(b, sourceName, src)
	AddProcessor(b, processorName, supply, sourceName)
	if n, ok := b.byName[sourceName]; ok {
		n.global = true
	}
	if n, ok := b.byName[processorName]; ok {
		n.global = true
	}
	b.AddStore(spec, processorName)
	if s, ok := b.stores[spec.Name]; ok {
		s.global = true
	}
}
