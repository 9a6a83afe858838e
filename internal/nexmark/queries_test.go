package nexmark

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/runnel-dev/runnel/registry/registrytest"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
)

// testEvents are 10,000 events over 40 s of event time: 200 people, 600
// auctions, 9,200 bids, 20 hopping and 4 tumbling windows.
func testEvents(t testing.TB) []Event {
	g, err := NewGenerator(Config{Seed: 42, EventsPerSecond: 250})
	if err != nil {
		t.Fatal(err)
	}
	return g.Generate(10_000)
}

// run pipes the events through query q in streamtest with 3 partitions per
// topic, committing every 500 records, and returns its driver.
func run(t *testing.T, q Query, events []Event, s Serdes) *streamtest.Driver {
	t.Helper()
	topo, err := q.BuildWith(s)
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.New(topo, streamtest.DefaultPartitions(3), streamtest.CommitEvery(500))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	reads := map[string]bool{}
	for _, in := range q.Inputs {
		reads[in] = true
	}
	for _, e := range events {
		if !reads[e.Topic()] {
			continue
		}
		r, err := e.EncodeWith(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Pipe(r.Topic, r.Key, r.Value, r.Timestamp); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := d.Dropped(); len(n) > 0 {
		t.Errorf("dropped records: %v", n)
	}
	return d
}

// forEachFormat runs test with the events written as JSON and as Avro
// (schemas in an in-memory registry): the queries must give the same
// results from either.
func forEachFormat(t *testing.T, test func(*testing.T, Serdes)) {
	t.Run("json", func(t *testing.T) { test(t, JSON) })
	t.Run("avro", func(t *testing.T) {
		s, err := AvroSerdes(registrytest.Client(t))
		if err != nil {
			t.Fatal(err)
		}
		test(t, s)
	})
}

// The reference results below are plain Go over the event list, written
// from Nexmark's definitions of the queries, not from the DSL versions.

func allBids(events []Event) []Bid {
	var out []Bid
	for _, e := range events {
		if e.Kind == KindBid {
			out = append(out, *e.Bid)
		}
	}
	return out
}

// sortedJSON returns the values as JSON, sorted: a multiset to compare.
func sortedJSON[V any](t *testing.T, vs []V) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(b)
	}
	slices.Sort(out)
	return out
}

func outputValues[V any](t *testing.T, d *streamtest.Driver, topic string, vs serde.Serde[V]) []V {
	recs, err := streamtest.Output(d, topic, serde.Int64, vs)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]V, len(recs))
	for i, r := range recs {
		out[i] = r.Value
	}
	return out
}

func TestQ0(t *testing.T) { forEachFormat(t, testQ0) }

func testQ0(t *testing.T, s Serdes) {
	events := testEvents(t)
	d := run(t, Queries["q0"], events, s)
	got := outputValues(t, d, "nexmark-q0", s.Bid)
	want := allBids(events)
	if !slices.Equal(sortedJSON(t, got), sortedJSON(t, want)) {
		t.Fatalf("q0: %d bids out, want the %d in", len(got), len(want))
	}
}

func TestQ1(t *testing.T) { forEachFormat(t, testQ1) }

func testQ1(t *testing.T, s Serdes) {
	events := testEvents(t)
	d := run(t, Queries["q1"], events, s)
	got := outputValues(t, d, "nexmark-q1", s.Bid)
	var want []Bid
	for _, b := range allBids(events) {
		b.Price = int64(float64(b.Price) * 0.908) // truncated to the cent
		want = append(want, b)
	}
	if !slices.Equal(sortedJSON(t, got), sortedJSON(t, want)) {
		t.Fatalf("q1: %d bids out differ from the %d expected", len(got), len(want))
	}
}

func TestQ2(t *testing.T) { forEachFormat(t, testQ2) }

func testQ2(t *testing.T, s Serdes) {
	events := testEvents(t)
	d := run(t, Queries["q2"], events, s)
	got := outputValues(t, d, "nexmark-q2", serde.JSON[Q2]())
	var want []Q2
	for _, b := range allBids(events) {
		if b.Auction%123 == 0 {
			want = append(want, Q2{b.Auction, b.Price})
		}
	}
	if len(want) == 0 {
		t.Fatal("no bid selected: the test input is too small")
	}
	if !slices.Equal(sortedJSON(t, got), sortedJSON(t, want)) {
		t.Fatalf("q2: got %v, want %v", got, want)
	}
}

func latest[K comparable, V any](t *testing.T, d *streamtest.Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) map[K]V {
	m, err := streamtest.Latest(d, topic, ks, vs)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func compareMaps[K comparable, V any](t *testing.T, name string, got, want map[K]V) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: no expected result: the test input is too small", name)
	}
	eq := func(a, b V) bool { return fmt.Sprint(a) == fmt.Sprint(b) }
	if maps.EqualFunc(got, want, eq) {
		return
	}
	t.Errorf("%s: %d results, want %d", name, len(got), len(want))
	n := 0
	for k, w := range want {
		if g, ok := got[k]; (!ok || !eq(g, w)) && n < 10 {
			t.Errorf("%s: key %v: got %v (present %v), want %v", name, k, g, ok, w)
			n++
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && n < 10 {
			t.Errorf("%s: unexpected key %v: %v", name, k, g)
			n++
		}
	}
}

func TestQ3(t *testing.T) { forEachFormat(t, testQ3) }

func testQ3(t *testing.T, s Serdes) {
	events := testEvents(t)
	d := run(t, Queries["q3"], events, s)
	got := latest(t, d, "nexmark-q3", serde.Int64, serde.JSON[Q3]())
	people := map[int64]Person{}
	for _, e := range events {
		if e.Kind == KindPerson {
			people[e.Person.ID] = *e.Person
		}
	}
	want := map[int64]Q3{}
	for _, e := range events {
		if e.Kind != KindAuction || e.Auction.Category != 10 {
			continue
		}
		p, ok := people[e.Auction.Seller]
		if ok && (p.State == "OR" || p.State == "ID" || p.State == "CA") {
			want[e.Auction.ID] = Q3{Name: p.Name, City: p.City, State: p.State, ID: e.Auction.ID}
		}
	}
	compareMaps(t, "q3", got, want)
}

func TestQ4(t *testing.T) { forEachFormat(t, testQ4) }

func testQ4(t *testing.T, s Serdes) {
	events := testEvents(t)
	d := run(t, Queries["q4"], events, s)
	got := latest(t, d, "nexmark-q4", serde.Int64, serde.JSON[Q4]())
	auctions := map[int64]Auction{}
	for _, e := range events {
		if e.Kind == KindAuction {
			auctions[e.Auction.ID] = *e.Auction
		}
	}
	final := map[int64]int64{} // auction id -> highest bid while open
	for _, b := range allBids(events) {
		a, ok := auctions[b.Auction]
		if !ok || b.DateTime < a.DateTime || b.DateTime > a.Expires {
			continue
		}
		if p, seen := final[a.ID]; !seen || b.Price > p {
			final[a.ID] = b.Price
		}
	}
	sums, counts := map[int64]int64{}, map[int64]int64{}
	for id, p := range final {
		c := auctions[id].Category
		sums[c] += p
		counts[c]++
	}
	want := map[int64]Q4{}
	for c, s := range sums {
		want[c] = Q4{Sum: s, Count: counts[c], Avg: float64(s) / float64(counts[c])}
	}
	compareMaps(t, "q4", got, want)
}

func TestQ5(t *testing.T) { forEachFormat(t, testQ5) }

func testQ5(t *testing.T, s Serdes) {
	events := testEvents(t)
	d := run(t, Queries["q5"], events, s)
	got := latest(t, d, "nexmark-q5", serde.Int64, serde.JSON[Q5]())
	counts := map[int64]map[int64]int64{} // window start -> auction -> bids
	for _, b := range allBids(events) {
		// The windows of 10 s every 2 s holding the bid: starts in
		// (t-10 s, t], multiples of 2 s.
		for start := b.DateTime - b.DateTime%2000; start > b.DateTime-10_000; start -= 2000 {
			if counts[start] == nil {
				counts[start] = map[int64]int64{}
			}
			counts[start][b.Auction]++
		}
	}
	want := map[int64]Q5{}
	for start, per := range counts {
		var best Q5
		for a, n := range per {
			if n > best.Count {
				best = Q5{Count: n}
			}
			if n == best.Count {
				best.Auctions = append(best.Auctions, a)
			}
		}
		slices.Sort(best.Auctions)
		want[start] = best
	}
	compareMaps(t, "q5", got, want)
}

func TestQ7(t *testing.T) { forEachFormat(t, testQ7) }

func testQ7(t *testing.T, s Serdes) {
	events := testEvents(t)
	d := run(t, Queries["q7"], events, s)
	got := latest(t, d, "nexmark-q7", serde.Int64, serde.JSON[Q7]())
	want := map[int64]Q7{}
	for _, b := range allBids(events) {
		start := b.DateTime / 10_000 * 10_000
		w, ok := want[start]
		switch {
		case !ok || b.Price > w.Price:
			want[start] = Q7{Price: b.Price, Bids: []Bid{b}}
		case b.Price == w.Price:
			w.Bids = append(w.Bids, b)
			want[start] = w
		}
	}
	// The order of tied bids is the order processed: compare as sets.
	canon := func(m map[int64]Q7) map[int64]string {
		out := map[int64]string{}
		for k, v := range m {
			out[k] = fmt.Sprint(v.Price, sortedJSON(t, v.Bids))
		}
		return out
	}
	compareMaps(t, "q7", canon(got), canon(want))
}

func TestQ8(t *testing.T) { forEachFormat(t, testQ8) }

func testQ8(t *testing.T, s Serdes) {
	events := testEvents(t)
	d := run(t, Queries["q8"], events, s)
	got := latest(t, d, "nexmark-q8", serde.JSON[PersonWindow](), serde.JSON[Q8]())
	sold := map[PersonWindow]bool{} // sellers with an auction, per window
	for _, e := range events {
		if e.Kind == KindAuction {
			sold[PersonWindow{ID: e.Auction.Seller, Start: e.Auction.DateTime / 10_000 * 10_000}] = true
		}
	}
	want := map[PersonWindow]Q8{}
	for _, e := range events {
		if e.Kind != KindPerson {
			continue
		}
		k := PersonWindow{ID: e.Person.ID, Start: e.Person.DateTime / 10_000 * 10_000}
		if sold[k] {
			want[k] = Q8{ID: k.ID, Name: e.Person.Name, Start: k.Start}
		}
	}
	compareMaps(t, "q8", got, want)
}
