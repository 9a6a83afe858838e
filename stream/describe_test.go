package stream_test

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
)

// TestDescribeGolden prints a topology using most operation groups
// (re-keying, repartitioning, windowed and session aggregation with
// suppression, stream-table, stream-stream, table-table and foreign-key
// joins, a global table, branching) and compares it with
// testdata/describe.golden; -streamtest.rewrite (registered by streamtest) accepts
// the new output.
func TestDescribeGolden(t *testing.T) {
	b := stream.NewBuilder()
	orders := stream.From(b, "orders", serde.String, serde.Int64, stream.Named("orders"))
	customers := stream.TableOf(b, "customers", serde.String, serde.String, stream.Named("customers"))
	products := stream.GlobalTableOf(b, "products", serde.String, serde.String, stream.Named("products"))

	byCustomer := stream.SelectKey(orders, func(k string, _ int64) string { return k[:1] }, stream.Named("by-customer"))
	stream.JoinTable(byCustomer, customers, func(n int64, c string) string { return c }, stream.Named("enrich")).To("enriched")
	stream.JoinGlobal(orders, products, func(k string, _ int64) string { return k }, func(n int64, p string) string { return p },
		stream.Named("product")).To("with-product")

	grouped := byCustomer.GroupByKey(stream.Named("per-customer"))
	stream.WindowedBy(grouped, stream.Tumbling(time.Minute, 10*time.Second)).Count(stream.Named("per-minute")).
		Suppress(stream.UntilWindowCloses(), stream.Named("final-minute")).ToStream().To("minutes")
	stream.SessionWindowedBy(grouped, stream.Sessions(5*time.Minute, time.Minute)).Count(stream.Named("sessions"))
	stream.SlidingWindowedBy(grouped, stream.Sliding(time.Minute, 0)).Count(stream.Named("sliding"))

	clicks := stream.From(b, "clicks", serde.String, serde.String, stream.Named("clicks"))
	branches := clicks.Split([]stream.Branch[string, string]{{Name: "ads", Predicate: func(_, v string) bool { return v == "ad" }}}, true, stream.Named("split"))
	stream.Join(branches["ads"], branches["default"], func(a, c string) string { return a + c },
		stream.JoinWithin(10*time.Minute, time.Minute), stream.Named("ads-clicks")).To("ads-clicks")

	totals := orders.GroupByKey().Reduce(func(a, v int64) int64 { return a + v }, stream.Named("totals"))
	stream.JoinTables(totals, customers, func(n int64, c string) string { return c }, stream.Named("totals-customers"))
	stream.JoinForeignKey(customers, totals, func(c string) string { return c }, func(c string, n int64) int64 { return n },
		stream.Named("fk"))

	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	got := topo.Describe()
	const path = "testdata/describe.golden"
	if f := flag.Lookup("streamtest.rewrite"); f != nil && f.Value.String() == "true" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -streamtest.rewrite to create it)", err)
	}
	if got != string(want) {
		t.Errorf("Describe differs from %s (run with -streamtest.rewrite to accept):\n%s", path, got)
	}
}
