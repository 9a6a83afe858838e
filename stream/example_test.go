package stream_test

import (
	"fmt"
	"strings"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
)

// The stateless operations: filter, map, branch, merge, write.
func Example_stateless() {
	b := stream.NewBuilder()
	orders := stream.From(b, "orders", serde.String, serde.Int64)
	big := orders.Filter(func(_ string, cents int64) bool { return cents >= 1000 }, stream.Named("big-orders"))
	euros := stream.MapValues(big, func(cents int64) string { return fmt.Sprintf("€%d.%02d", cents/100, cents%100) })
	upper := stream.SelectKey(euros, func(k, _ string) string { return strings.ToUpper(k) })
	branches := upper.Split([]stream.Branch[string, string]{
		{Name: "vip", Predicate: func(k, _ string) bool { return strings.HasPrefix(k, "VIP") }},
	}, true, stream.Named("route"))
	branches["vip"].To("vip-orders")
	branches["default"].Merge(branches["vip"]).To("all-big-orders")
	topo, _ := b.Build()

	d, _ := streamtest.New(topo)
	in := streamtest.Input(d, "orders", serde.String, serde.Int64)
	in.Pipe("vip-ann", 2500, 1)
	in.Pipe("bob", 999, 2)
	in.Pipe("carl", 1200, 3)
	vip, _ := streamtest.Output(d, "vip-orders", serde.String, serde.String)
	all, _ := streamtest.Output(d, "all-big-orders", serde.String, serde.String)
	fmt.Println(vip)
	fmt.Println(all)
	// Output:
	// [VIP-ANN=€25.00@1]
	// [VIP-ANN=€25.00@1 CARL=€12.00@3]
}

// Word count: re-keying, grouping (through a repartition topic) and counting.
func Example_wordCount() {
	b := stream.NewBuilder()
	lines := stream.From(b, "lines", serde.String, serde.String)
	words := stream.FlatMapValues(lines, strings.Fields)
	stream.GroupBy(words, func(_, w string) string { return w }, stream.Named("words")).
		Count(stream.Materialized("counts")).
		ToStream().To("word-counts")
	topo, _ := b.Build()
	fmt.Print(topo.Describe())

	d, _ := streamtest.New(topo)
	in := streamtest.Input(d, "lines", serde.String, serde.String)
	in.Pipe("", "to be or not to be", 0)
	d.Commit() // the caches forward their latest updates, as at a commit of the runtime
	counts, _ := streamtest.Latest(d, "word-counts", serde.String, serde.Int64)
	fmt.Println(counts)
	// Output:
	// Topologies:
	//    Sub-topology: 0
	//     Source: KSTREAM-SOURCE-0000000000 (topics: [lines])
	//       --> KSTREAM-FLATMAPVALUES-0000000001
	//     Processor: KSTREAM-FLATMAPVALUES-0000000001 (stores: [])
	//       --> KSTREAM-KEY-SELECT-0000000002
	//       <-- KSTREAM-SOURCE-0000000000
	//     Processor: KSTREAM-KEY-SELECT-0000000002 (stores: [])
	//       --> words-repartition-sink
	//       <-- KSTREAM-FLATMAPVALUES-0000000001
	//     Sink: words-repartition-sink (topic: words-repartition)
	//       <-- KSTREAM-KEY-SELECT-0000000002
	//    Sub-topology: 1
	//     Source: words-repartition-source (topics: [words-repartition])
	//       --> KSTREAM-COUNT-0000000005
	//     Processor: KSTREAM-COUNT-0000000005 (stores: [counts])
	//       --> KTABLE-TOSTREAM-0000000006
	//       <-- words-repartition-source
	//     Processor: KTABLE-TOSTREAM-0000000006 (stores: [])
	//       --> KSTREAM-SINK-0000000007
	//       <-- KSTREAM-COUNT-0000000005
	//     Sink: KSTREAM-SINK-0000000007 (topic: word-counts)
	//       <-- KTABLE-TOSTREAM-0000000006
	// map[be:2 not:1 or:1 to:2]
}
