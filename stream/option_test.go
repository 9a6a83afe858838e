package stream

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// optionCases is one instance of every option, all fitting string keys and
// values, so an option an operation takes builds without error.
var optionCases = []struct {
	name string
	opt  Option
}{
	{"Named", Named("n")},
	{"Materialized", Materialized("m")},
	{"WithSerdes", WithSerdes(serde.String, serde.String)},
	{"WithValueSerde", WithValueSerde(serde.String)},
	{"WithPartitions", WithPartitions(3)},
	{"WithoutCaching", WithoutCaching()},
	{"WithoutLogging", WithoutLogging()},
	{"WithRetention", WithRetention(time.Hour)},
	{"WithSegmentInterval", WithSegmentInterval(time.Minute)},
	{"WithTimestamp", WithTimestamp(func(_, _ string, ts int64) int64 { return ts })},
}

// opCase applies one operation, with opt, to a builder.
type opCase struct {
	takes []string // the options the operation takes, written out here rather than read from ops
	apply func(b *Builder, opt Option)
}

func str(b *Builder) Stream[string, string] { return From(b, "in", serde.String, serde.String) }
func tbl(b *Builder, topic string) Table[string, string] {
	return TableOf(b, topic, serde.String, serde.String)
}
func swap(k, v string) (string, string) { return v, k }
func concat(a, b string) string         { return a + b }
func leftConcat(a string, b *string) string {
	if b == nil {
		return a
	}
	return a + *b
}
func initEmpty() string                       { return "" }
func appendTo(_ string, v, agg string) string { return agg + v }

var (
	storeOpts   = []string{"Named", "Materialized", "WithoutCaching", "WithoutLogging"}
	windowOpts  = append(slices.Clone(storeOpts), "WithRetention", "WithSegmentInterval")
	repartOpts  = []string{"Named", "WithSerdes", "WithValueSerde", "WithPartitions"}
	sinkOpts    = []string{"Named", "WithSerdes", "WithValueSerde"}
	named       = []string{"Named"}
	ssJoinOpts  = []string{"Named", "WithoutLogging", "WithSegmentInterval"}
	withValue   = func(o []string) []string { return append(slices.Clone(o), "WithValueSerde") }
	hour        = time.Hour
	passThrough = func() topology.Processor[string, string, string, string] { return &passProc{} }
)

type passProc struct {
	ctx topology.Context[string, string]
}

func (p *passProc) Init(ctx topology.Context[string, string]) error { p.ctx = ctx; return nil }
func (p *passProc) Process(r topology.Record[string, string]) error {
	p.ctx.Forward(r)
	return nil
}
func (p *passProc) Close() error { return nil }

var opCases = map[string]opCase{
	"From":             {[]string{"Named", "WithTimestamp"}, func(b *Builder, o Option) { From(b, "in", serde.String, serde.String, o).To("out") }},
	"Stream.Filter":    {named, func(b *Builder, o Option) { str(b).Filter(func(_, _ string) bool { return true }, o) }},
	"Stream.FilterNot": {named, func(b *Builder, o Option) { str(b).FilterNot(func(_, _ string) bool { return true }, o) }},
	"Stream.Peek":      {named, func(b *Builder, o Option) { str(b).Peek(func(_, _ string) {}, o) }},
	"Stream.ForEach":   {named, func(b *Builder, o Option) { str(b).ForEach(func(_, _ string) {}, o) }},
	"Stream.Merge": {named, func(b *Builder, o Option) {
		str(b).Merge(From(b, "in2", serde.String, serde.String), o)
	}},
	"Stream.To":          {sinkOpts, func(b *Builder, o Option) { str(b).To("out", o) }},
	"Stream.ToDynamic":   {sinkOpts, func(b *Builder, o Option) { str(b).ToDynamic(func(_, _ string) string { return "out" }, o) }},
	"Stream.Repartition": {repartOpts, func(b *Builder, o Option) { str(b).Repartition(o).To("out") }},
	"Stream.Split": {named, func(b *Builder, o Option) {
		str(b).Split([]Branch[string, string]{{Name: "all", Predicate: func(_, _ string) bool { return true }}}, true, o)
	}},
	"Map":       {named, func(b *Builder, o Option) { Map(str(b), swap, o) }},
	"MapValues": {named, func(b *Builder, o Option) { MapValues(str(b), strings.ToUpper, o) }},
	"FlatMap": {named, func(b *Builder, o Option) {
		FlatMap(str(b), func(k, v string) []KeyValue[string, string] { return nil }, o)
	}},
	"FlatMapValues": {named, func(b *Builder, o Option) { FlatMapValues(str(b), strings.Fields, o) }},
	"SelectKey":     {named, func(b *Builder, o Option) { SelectKey(str(b), func(_, v string) string { return v }, o) }},
	"Process":       {named, func(b *Builder, o Option) { Process(str(b), passThrough, nil, o) }},

	"Stream.GroupByKey": {repartOpts, func(b *Builder, o Option) {
		SelectKey(str(b), func(_, v string) string { return v }).GroupByKey(o).Count()
	}},
	"GroupBy":              {repartOpts, func(b *Builder, o Option) { GroupBy(str(b), func(_, v string) string { return v }, o).Count() }},
	"GroupedStream.Count":  {storeOpts, func(b *Builder, o Option) { str(b).GroupByKey().Count(o) }},
	"GroupedStream.Reduce": {withValue(storeOpts), func(b *Builder, o Option) { str(b).GroupByKey().Reduce(concat, o) }},
	"Aggregate":            {withValue(storeOpts), func(b *Builder, o Option) { Aggregate(str(b).GroupByKey(), initEmpty, appendTo, o) }},

	"GroupedTable.Count": {storeOpts, func(b *Builder, o Option) { GroupTableBy(tbl(b, "t"), swap).Count(o) }},
	"GroupedTable.Reduce": {withValue(storeOpts), func(b *Builder, o Option) {
		GroupTableBy(tbl(b, "t"), swap).Reduce(concat, concat, o)
	}},
	"AggregateTable": {withValue(storeOpts), func(b *Builder, o Option) {
		AggregateTable(GroupTableBy(tbl(b, "t"), swap), initEmpty, appendTo, appendTo, o)
	}},

	"TimeWindowedStream.Count":  {windowOpts, func(b *Builder, o Option) { WindowedBy(str(b).GroupByKey(), Tumbling(hour, 0)).Count(o) }},
	"TimeWindowedStream.Reduce": {withValue(windowOpts), func(b *Builder, o Option) { WindowedBy(str(b).GroupByKey(), Tumbling(hour, 0)).Reduce(concat, o) }},
	"WindowedAggregate": {withValue(windowOpts), func(b *Builder, o Option) {
		WindowedAggregate(WindowedBy(str(b).GroupByKey(), Tumbling(hour, 0)), initEmpty, appendTo, o)
	}},
	"SessionWindowedStream.Count": {windowOpts, func(b *Builder, o Option) { SessionWindowedBy(str(b).GroupByKey(), Sessions(hour, 0)).Count(o) }},
	"SessionWindowedStream.Reduce": {withValue(windowOpts), func(b *Builder, o Option) {
		SessionWindowedBy(str(b).GroupByKey(), Sessions(hour, 0)).Reduce(concat, o)
	}},
	"SessionAggregate": {withValue(windowOpts), func(b *Builder, o Option) {
		SessionAggregate(SessionWindowedBy(str(b).GroupByKey(), Sessions(hour, 0)), initEmpty, appendTo, func(_, a, c string) string { return a + c }, o)
	}},
	"SlidingWindowedStream.Count": {windowOpts, func(b *Builder, o Option) { SlidingWindowedBy(str(b).GroupByKey(), Sliding(hour, 0)).Count(o) }},
	"SlidingWindowedStream.Reduce": {withValue(windowOpts), func(b *Builder, o Option) {
		SlidingWindowedBy(str(b).GroupByKey(), Sliding(hour, 0)).Reduce(concat, o)
	}},
	"SlidingAggregate": {withValue(windowOpts), func(b *Builder, o Option) {
		SlidingAggregate(SlidingWindowedBy(str(b).GroupByKey(), Sliding(hour, 0)), initEmpty, appendTo, o)
	}},

	"JoinTable":     {named, func(b *Builder, o Option) { JoinTable(str(b), tbl(b, "t"), concat, o) }},
	"LeftJoinTable": {named, func(b *Builder, o Option) { LeftJoinTable(str(b), tbl(b, "t"), leftConcat, o) }},
	"GlobalTableOf": {[]string{"Named", "Materialized"}, func(b *Builder, o Option) { GlobalTableOf(b, "g", serde.String, serde.String, o) }},
	"JoinGlobal": {named, func(b *Builder, o Option) {
		JoinGlobal(str(b), GlobalTableOf(b, "g", serde.String, serde.String), func(k, _ string) string { return k }, concat, o)
	}},
	"LeftJoinGlobal": {named, func(b *Builder, o Option) {
		LeftJoinGlobal(str(b), GlobalTableOf(b, "g", serde.String, serde.String), func(k, _ string) string { return k }, leftConcat, o)
	}},
	"Join": {ssJoinOpts, func(b *Builder, o Option) {
		Join(str(b), From(b, "in2", serde.String, serde.String), concat, JoinWithin(hour, 0), o)
	}},
	"LeftJoin": {ssJoinOpts, func(b *Builder, o Option) {
		LeftJoin(str(b), From(b, "in2", serde.String, serde.String), leftConcat, JoinWithin(hour, 0), o)
	}},
	"OuterJoin": {ssJoinOpts, func(b *Builder, o Option) {
		OuterJoin(str(b), From(b, "in2", serde.String, serde.String), func(a, c *string) string { return "" }, JoinWithin(hour, 0), o)
	}},

	"TableOf":         {storeOpts, func(b *Builder, o Option) { TableOf(b, "t", serde.String, serde.String, o) }},
	"Table.Filter":    {storeOpts, func(b *Builder, o Option) { tbl(b, "t").Filter(func(_, _ string) bool { return true }, o) }},
	"Table.FilterNot": {storeOpts, func(b *Builder, o Option) { tbl(b, "t").FilterNot(func(_, _ string) bool { return true }, o) }},
	"MapTableValues":  {withValue(storeOpts), func(b *Builder, o Option) { MapTableValues(tbl(b, "t"), strings.ToUpper, o) }},
	"Table.ToStream":  {named, func(b *Builder, o Option) { tbl(b, "t").ToStream(o) }},
	"GroupTableBy":    {repartOpts, func(b *Builder, o Option) { GroupTableBy(tbl(b, "t"), swap, o).Count() }},
	"Table.Suppress": {[]string{"Named", "Materialized", "WithoutLogging"}, func(b *Builder, o Option) {
		tbl(b, "t").Suppress(UntilTimeLimit(hour), o)
	}},

	"JoinTables":     {withValue(storeOpts), func(b *Builder, o Option) { JoinTables(tbl(b, "t"), tbl(b, "t2"), concat, o) }},
	"LeftJoinTables": {withValue(storeOpts), func(b *Builder, o Option) { LeftJoinTables(tbl(b, "t"), tbl(b, "t2"), leftConcat, o) }},
	"OuterJoinTables": {withValue(storeOpts), func(b *Builder, o Option) {
		OuterJoinTables(tbl(b, "t"), tbl(b, "t2"), func(a, c *string) string { return "" }, o)
	}},
	"JoinForeignKey": {withValue(storeOpts), func(b *Builder, o Option) {
		JoinForeignKey(tbl(b, "t"), tbl(b, "t2"), strings.ToUpper, concat, o)
	}},
	"LeftJoinForeignKey": {withValue(storeOpts), func(b *Builder, o Option) {
		LeftJoinForeignKey(tbl(b, "t"), tbl(b, "t2"), strings.ToUpper, leftConcat, o)
	}},
}

// TestOptionsOperationsTake gives every operation every option: those it
// takes build, the others fail Build with an error naming both.
func TestOptionsOperationsTake(t *testing.T) {
	for opName, c := range opCases {
		for _, oc := range optionCases {
			t.Run(opName+"/"+oc.name, func(t *testing.T) {
				b := NewBuilder()
				c.apply(b, oc.opt)
				_, err := b.Build()
				if slices.Contains(c.takes, oc.name) {
					if err != nil {
						t.Fatalf("%s with %s: Build: %v", opName, oc.name, err)
					}
					return
				}
				want := "stream: " + opName + " does not take option " + oc.name
				if err == nil || err.Error() != want {
					t.Fatalf("%s with %s: Build error %v, want %q", opName, oc.name, err, want)
				}
			})
		}
	}
}

// TestOptionsEveryOperationCovered keeps opCases complete: an operation
// added to ops without a case here fails.
func TestOptionsEveryOperationCovered(t *testing.T) {
	v := reflect.ValueOf(ops)
	var inOps []string
	for i := range v.NumField() {
		inOps = append(inOps, v.Field(i).FieldByName("name").String())
	}
	for _, n := range inOps {
		if _, ok := opCases[n]; !ok {
			t.Errorf("operation %s has no case in opCases", n)
		}
	}
	for n := range opCases {
		if !slices.Contains(inOps, n) {
			t.Errorf("opCases has %s, which ops does not list", n)
		}
	}
	if len(optionCases) != numOptionKinds {
		t.Errorf("optionCases has %d options, the package %d", len(optionCases), numOptionKinds)
	}
}

// TestOptionsNilRejected fails Build on a nil option rather than panicking.
func TestOptionsNilRejected(t *testing.T) {
	b := NewBuilder()
	str(b).Filter(func(_, _ string) bool { return true }, nil)
	_, err := b.Build()
	if want := "stream: Stream.Filter: nil option"; err == nil || err.Error() != want {
		t.Fatalf("Build error %v, want %q", err, want)
	}
}

// TestOptionsAllRejectedReported reports every option an operation does not
// take, not only the first.
func TestOptionsAllRejectedReported(t *testing.T) {
	b := NewBuilder()
	str(b).Filter(func(_, _ string) bool { return true }, Named("f"), Materialized("s"), WithPartitions(2))
	_, err := b.Build()
	want := "stream: Stream.Filter does not take option Materialized\nstream: Stream.Filter does not take option WithPartitions"
	if err == nil || err.Error() != want {
		t.Fatalf("Build error %v, want %q", err, want)
	}
}
