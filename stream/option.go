package stream

import (
	"math/bits"
	"time"

	"github.com/runnel-dev/runnel/stream/serde"
)

// Option configures one DSL operation. Every operation takes Named; the
// others only where they mean something (a store's options where the
// operation has a store, a serde where it writes a topic or a store). An
// operation given an option it cannot use fails Build with an error naming
// both: "stream: Stream.Filter does not take option Materialized".
type Option func(*options)

type options struct {
	set        optionKind // the kinds of the options given, checked by Builder.collect
	name       string
	storeName  string
	keySerde   any
	valueSerde any
	partitions int
	noCaching  bool
	noLogging  bool
	retention  time.Duration
	timestamp  any
	segment    time.Duration
}

// optionKind is one bit per exported option constructor.
type optionKind uint16

const (
	optNamed optionKind = 1 << iota
	optMaterialized
	optSerdes
	optValueSerde
	optPartitions
	optNoCaching
	optNoLogging
	optRetention
	optSegment
	optTimestamp
	numOptionKinds = iota
)

// optionNames are the constructors' names, by bit, for errors.
var optionNames = [numOptionKinds]string{
	"Named", "Materialized", "WithSerdes", "WithValueSerde", "WithPartitions",
	"WithoutCaching", "WithoutLogging", "WithRetention", "WithSegmentInterval", "WithTimestamp",
}

func (k optionKind) String() string { return optionNames[bits.TrailingZeros16(uint16(k))] }

// Sets of options that go together, to keep the table below readable.
const (
	// optSerdeAny is either way of giving a serde pair or a value serde.
	optSerdeAny = optSerdes | optValueSerde
	// optStore configures the key-value store an operation materializes.
	optStore = optMaterialized | optNoCaching | optNoLogging
	// optWindowStore configures a windowed aggregation's store.
	optWindowStore = optStore | optRetention | optSegment
)

// op is a DSL operation as its errors name it, and the options it takes.
type op struct {
	name  string
	takes optionKind
}

// ops is every DSL operation taking options, with the options it uses: the
// one place that says which option goes where. An operation calls
// Builder.collect with its entry exactly once.
var ops = struct {
	from, filter, filterNot, peek, forEach, merge, to, toDynamic, repartition, split,
	mapOp, mapValues, flatMap, flatMapValues, selectKey, process,
	groupByKey, groupBy, count, reduce, aggregate,
	tableCount, tableReduce, aggregateTable,
	windowCount, windowReduce, windowAggregate,
	sessionCount, sessionReduce, sessionAggregate,
	slidingCount, slidingReduce, slidingAggregate,
	joinTable, leftJoinTable, globalTableOf, joinGlobal, leftJoinGlobal,
	join, leftJoin, outerJoin,
	tableOf, tableFilter, tableFilterNot, mapTableValues, toStream, groupTableBy, suppress,
	joinTables, leftJoinTables, outerJoinTables,
	joinForeignKey, leftJoinForeignKey op
}{
	from:          op{"From", optNamed | optTimestamp},
	filter:        op{"Stream.Filter", optNamed},
	filterNot:     op{"Stream.FilterNot", optNamed},
	peek:          op{"Stream.Peek", optNamed},
	forEach:       op{"Stream.ForEach", optNamed},
	merge:         op{"Stream.Merge", optNamed},
	to:            op{"Stream.To", optNamed | optSerdeAny},
	toDynamic:     op{"Stream.ToDynamic", optNamed | optSerdeAny},
	repartition:   op{"Stream.Repartition", optNamed | optSerdeAny | optPartitions},
	split:         op{"Stream.Split", optNamed},
	mapOp:         op{"Map", optNamed},
	mapValues:     op{"MapValues", optNamed},
	flatMap:       op{"FlatMap", optNamed},
	flatMapValues: op{"FlatMapValues", optNamed},
	selectKey:     op{"SelectKey", optNamed},
	process:       op{"Process", optNamed},

	// A grouping's serdes and partitions are its repartition topic's.
	groupByKey: op{"Stream.GroupByKey", optNamed | optSerdeAny | optPartitions},
	groupBy:    op{"GroupBy", optNamed | optSerdeAny | optPartitions},
	// An aggregation's key serde is its grouping's: it takes a value serde
	// only, and a count none (its values are serde.Int64's).
	count:     op{"GroupedStream.Count", optNamed | optStore},
	reduce:    op{"GroupedStream.Reduce", optNamed | optStore | optValueSerde},
	aggregate: op{"Aggregate", optNamed | optStore | optValueSerde},

	tableCount:     op{"GroupedTable.Count", optNamed | optStore},
	tableReduce:    op{"GroupedTable.Reduce", optNamed | optStore | optValueSerde},
	aggregateTable: op{"AggregateTable", optNamed | optStore | optValueSerde},

	windowCount:      op{"TimeWindowedStream.Count", optNamed | optWindowStore},
	windowReduce:     op{"TimeWindowedStream.Reduce", optNamed | optWindowStore | optValueSerde},
	windowAggregate:  op{"WindowedAggregate", optNamed | optWindowStore | optValueSerde},
	sessionCount:     op{"SessionWindowedStream.Count", optNamed | optWindowStore},
	sessionReduce:    op{"SessionWindowedStream.Reduce", optNamed | optWindowStore | optValueSerde},
	sessionAggregate: op{"SessionAggregate", optNamed | optWindowStore | optValueSerde},
	slidingCount:     op{"SlidingWindowedStream.Count", optNamed | optWindowStore},
	slidingReduce:    op{"SlidingWindowedStream.Reduce", optNamed | optWindowStore | optValueSerde},
	slidingAggregate: op{"SlidingAggregate", optNamed | optWindowStore | optValueSerde},

	joinTable:      op{"JoinTable", optNamed},
	leftJoinTable:  op{"LeftJoinTable", optNamed},
	globalTableOf:  op{"GlobalTableOf", optNamed | optMaterialized},
	joinGlobal:     op{"JoinGlobal", optNamed},
	leftJoinGlobal: op{"LeftJoinGlobal", optNamed},
	// A stream-stream join's window stores are named after the join and
	// retain what its windows need.
	join:      op{"Join", optNamed | optNoLogging | optSegment},
	leftJoin:  op{"LeftJoin", optNamed | optNoLogging | optSegment},
	outerJoin: op{"OuterJoin", optNamed | optNoLogging | optSegment},

	tableOf:        op{"TableOf", optNamed | optStore},
	tableFilter:    op{"Table.Filter", optNamed | optStore},
	tableFilterNot: op{"Table.FilterNot", optNamed | optStore},
	mapTableValues: op{"MapTableValues", optNamed | optStore | optValueSerde},
	toStream:       op{"Table.ToStream", optNamed},
	groupTableBy:   op{"GroupTableBy", optNamed | optSerdeAny | optPartitions},
	// A suppression buffer is never cached.
	suppress: op{"Table.Suppress", optNamed | optMaterialized | optNoLogging},

	joinTables:      op{"JoinTables", optNamed | optStore | optValueSerde},
	leftJoinTables:  op{"LeftJoinTables", optNamed | optStore | optValueSerde},
	outerJoinTables: op{"OuterJoinTables", optNamed | optStore | optValueSerde},

	joinForeignKey:     op{"JoinForeignKey", optNamed | optStore | optValueSerde},
	leftJoinForeignKey: op{"LeftJoinForeignKey", optNamed | optStore | optValueSerde},
}

// collect applies the options of opts that operation o takes, and reports
// each of the others (leaving it out, so that it causes no error of its
// own). Every exported operation calls it once, on the options its caller
// gave, and hands the result to the code it shares with other operations.
func (b *Builder) collect(o op, opts []Option) *options {
	c := &options{}
	for _, f := range opts {
		if f == nil {
			b.errorf("%s: nil option", o.name)
			continue
		}
		var kind options
		f(&kind)
		if bad := kind.set &^ o.takes; bad != 0 {
			b.errorf("%s does not take option %v", o.name, bad)
			continue
		}
		f(c)
	}
	return c
}

// Named names the operation's processor node. Stateful operations also
// derive their store and internal topic names from it ("<name>-store",
// "<name>-repartition") unless Materialized names the store. Kafka Streams'
// Named.as / Grouped.as. Every operation takes it.
func Named(name string) Option {
	return func(o *options) { o.set |= optNamed; o.name = name }
}

// Materialized names the operation's state store (Kafka Streams'
// Materialized.as). Its changelog topic is "<application id>-<name>-changelog".
func Materialized(store string) Option {
	return func(o *options) { o.set |= optMaterialized; o.storeName = store }
}

// WithSerdes sets the key and value serdes of a source, sink, repartition
// topic or store (Kafka Streams' Consumed.with / Produced.with /
// Materialized.withKeySerde+withValueSerde). Their types must match the
// operation's; a mismatch fails Build. Without it a stream keeps the serdes
// it was read with until an operation changes its types, after which
// serde.Default applies.
func WithSerdes[K, V any](k serde.Serde[K], v serde.Serde[V]) Option {
	return func(o *options) { o.set |= optSerdes; o.keySerde, o.valueSerde = k, v }
}

// WithValueSerde sets only the value serde (see WithSerdes): that of an
// aggregate or a derived table, whose key serde is its input's.
func WithValueSerde[V any](v serde.Serde[V]) Option {
	return func(o *options) { o.set |= optValueSerde; o.valueSerde = v }
}

// WithPartitions sets the partition count of a repartition topic. Default:
// that of the largest source topic upstream (Kafka Streams'
// Repartitioned.withNumberOfPartitions).
func WithPartitions(n int) Option {
	return func(o *options) { o.set |= optPartitions; o.partitions = n }
}

// WithoutCaching turns the record cache of the operation's store off, so
// every update is forwarded (Materialized.withCachingDisabled). Caching is on
// by default where the driver enables it.
func WithoutCaching() Option {
	return func(o *options) { o.set |= optNoCaching; o.noCaching = true }
}

// WithoutLogging turns the changelog of the operation's store off
// (Materialized.withLoggingDisabled); its state is then lost with the instance.
func WithoutLogging() Option {
	return func(o *options) { o.set |= optNoLogging; o.noLogging = true }
}

// WithRetention sets how long a windowed aggregation's store keeps windows
// (Materialized.withRetention), at least window size + grace (the default).
// A stream-stream join sizes its stores from its windows and does not take it.
func WithRetention(d time.Duration) Option {
	return func(o *options) { o.set |= optRetention; o.retention = d }
}

// WithSegmentInterval sets a window or session store's segment interval
// (default: state.WindowOptions' default).
func WithSegmentInterval(d time.Duration) Option {
	return func(o *options) { o.set |= optSegment; o.segment = d }
}

// WithTimestamp sets a source's timestamp extractor (Consumed.
// withTimestampExtractor). Default: the record's own timestamp.
func WithTimestamp[K, V any](f func(key K, value V, recordTimestamp int64) int64) Option {
	return func(o *options) { o.set |= optTimestamp; o.timestamp = f }
}
