package stream_test

import (
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
)

// TestRepartitionTopicNamedAfterStore: a grouping that must repartition
// names its topic after the grouping when it is named, else after the
// aggregation's store when that is named (Kafka Streams' rule: store
// "sums" reads "<app>-sums-repartition"), else a generated name.
func TestRepartitionTopicNamedAfterStore(t *testing.T) {
	for _, tc := range []struct {
		name      string
		groupOpts []stream.Option
		countOpts []stream.Option
		want      string
	}{
		{"store named", nil, []stream.Option{stream.Materialized("sums")}, "(topic: sums-repartition)"},
		{"grouping named", []stream.Option{stream.Named("by-word")}, []stream.Option{stream.Materialized("sums")}, "(topic: by-word-repartition)"},
		{"neither", nil, nil, "(topic: KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := stream.NewBuilder()
			lines := stream.From(b, "lines", serde.String, serde.String)
			g := stream.GroupBy(lines, func(_, v string) string { return v }, tc.groupOpts...)
			g.Count(tc.countOpts...).ToStream().To("counts")
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			if d := topo.Describe(); !strings.Contains(d, tc.want) {
				t.Fatalf("topology lacks %s:\n%s", tc.want, d)
			}
		})
	}
}
