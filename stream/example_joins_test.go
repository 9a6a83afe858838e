package stream_test

import (
	"fmt"
	"time"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
)

func printOutput(d *streamtest.Driver, topic string) {
	out, _ := streamtest.Output(d, topic, serde.String, serde.String)
	fmt.Println(topic, out)
}

// Stream-table joins: each order meets the customer's profile as it is when
// the order is processed; later profile changes do not re-emit.
func Example_streamTableJoin() {
	b := stream.NewBuilder()
	customers := stream.TableOf(b, "customers", serde.String, serde.String)
	orders := stream.From(b, "orders", serde.String, serde.String)
	stream.JoinTable(orders, customers, func(o, c string) string { return o + " for " + c }).To("inner")
	stream.LeftJoinTable(orders, customers, func(o string, c *string) string {
		if c == nil {
			return o + " for ?"
		}
		return o + " for " + *c
	}).To("left")
	topo, _ := b.Build()
	d, _ := streamtest.New(topo)
	c := streamtest.Input(d, "customers", serde.String, serde.String)
	o := streamtest.Input(d, "orders", serde.String, serde.String)
	o.Pipe("ann", "book", 1)
	c.Pipe("ann", "Ann (gold)", 2)
	o.Pipe("ann", "pen", 3)
	c.Pipe("ann", "Ann (silver)", 4)
	printOutput(d, "inner")
	printOutput(d, "left")
	// Output:
	// inner [ann=pen for Ann (gold)@3]
	// left [ann=book for ?@1 ann=pen for Ann (gold)@3]
}

// Stream-stream joins within a time window: inner, left and outer.
// Unmatched records of outer sides are emitted once their window closed.
func Example_streamStreamJoin() {
	b := stream.NewBuilder()
	clicks := stream.From(b, "clicks", serde.String, serde.String)
	views := stream.From(b, "views", serde.String, serde.String)
	w := stream.JoinWithin(10*time.Second, 0)
	stream.Join(clicks, views, func(c, v string) string { return c + "+" + v }, w).To("inner")
	stream.OuterJoin(clicks, views, func(c, v *string) string {
		s := func(p *string) string {
			if p == nil {
				return "-"
			}
			return *p
		}
		return s(c) + "+" + s(v)
	}, w).To("outer")
	topo, _ := b.Build()
	d, _ := streamtest.New(topo)
	ci := streamtest.Input(d, "clicks", serde.String, serde.String)
	vi := streamtest.Input(d, "views", serde.String, serde.String)
	vi.Pipe("ad1", "view", 1_000)
	ci.Pipe("ad1", "click", 5_000)
	ci.Pipe("ad2", "click", 6_000)
	vi.Pipe("ad3", "view", 40_000) // stream time moves on: ad2's click is final
	printOutput(d, "inner")
	printOutput(d, "outer")
	// Output:
	// inner [ad1=click+view@5000]
	// outer [ad1=click+view@5000 ad2=click+-@6000]
}

// Table-table joins on key: inner, left and outer, updated by either side.
func Example_tableTableJoin() {
	b := stream.NewBuilder()
	names := stream.TableOf(b, "names", serde.String, serde.String)
	emails := stream.TableOf(b, "emails", serde.String, serde.String)
	stream.JoinTables(names, emails, func(n, e string) string { return n + " <" + e + ">" }).ToStream().To("inner")
	stream.OuterJoinTables(names, emails, func(n, e *string) string {
		if n == nil {
			return "? <" + *e + ">"
		}
		if e == nil {
			return *n + " <?>"
		}
		return *n + " <" + *e + ">"
	}).ToStream().To("outer")
	topo, _ := b.Build()
	d, _ := streamtest.New(topo, streamtest.Caching(false)) // every update: caching off, as with runnel.CacheBytes(0)
	n := streamtest.Input(d, "names", serde.String, serde.String)
	e := streamtest.Input(d, "emails", serde.String, serde.String)
	n.Pipe("u1", "Ann", 1)
	e.Pipe("u1", "ann@x.org", 2)
	e.Pipe("u2", "bob@x.org", 3)
	n.Delete("u1", 4)
	printOutput(d, "inner")
	printOutput(d, "outer")
	// Output:
	// inner [u1=Ann <ann@x.org>@2 u1=<tombstone>@4]
	// outer [u1=Ann <?>@1 u1=Ann <ann@x.org>@2 u2=? <bob@x.org>@3 u1=? <ann@x.org>@4]
}

// A foreign-key join: each order (keyed by order id) joined with the
// customer it names, updated when the order moves to another customer or
// the customer changes.
func Example_foreignKeyJoin() {
	b := stream.NewBuilder()
	orders := stream.TableOf(b, "orders", serde.String, serde.String) // order -> customer id
	customers := stream.TableOf(b, "customers", serde.String, serde.String)
	stream.JoinForeignKey(orders, customers, func(customer string) string { return customer },
		func(customer, name string) string { return name }).ToStream().To("order-names")
	topo, _ := b.Build()
	d, _ := streamtest.New(topo, streamtest.Caching(false), streamtest.Partitions("orders", 3), streamtest.Partitions("customers", 2)) // every update: caching off, as with runnel.CacheBytes(0)
	o := streamtest.Input(d, "orders", serde.String, serde.String)
	c := streamtest.Input(d, "customers", serde.String, serde.String)
	c.Pipe("c1", "Ann", 1)
	o.Pipe("o1", "c1", 2)
	o.Pipe("o2", "c2", 3) // no customer c2 yet: nothing for an inner join
	c.Pipe("c2", "Bob", 4)
	c.Pipe("c1", "Ann B.", 5)
	o.Pipe("o1", "c2", 6)
	o.Delete("o2", 7)
	printOutput(d, "order-names")
	// Output:
	// order-names [o1=Ann@2 o2=Bob@4 o1=Ann B.@5 o1=Bob@6 o2=<tombstone>@7]
}

// A global table is whole in every task: streams join it by any key
// computed from the record, without repartitioning.
func Example_globalTableJoin() {
	b := stream.NewBuilder()
	countries := stream.GlobalTableOf(b, "countries", serde.String, serde.String)
	visits := stream.From(b, "visits", serde.String, serde.String) // user -> country code
	stream.LeftJoinGlobal(visits, countries, func(_, code string) string { return code },
		func(code string, name *string) string {
			if name == nil {
				return code
			}
			return *name
		}).To("visits-by-country")
	topo, _ := b.Build()
	d, _ := streamtest.New(topo, streamtest.Partitions("visits", 4))
	streamtest.Input(d, "countries", serde.String, serde.String).Pipe("fr", "France", 0)
	v := streamtest.Input(d, "visits", serde.String, serde.String)
	v.Pipe("ann", "fr", 1)
	v.Pipe("bob", "zz", 2)
	printOutput(d, "visits-by-country")
	// Output:
	// visits-by-country [ann=France@1 bob=zz@2]
}
