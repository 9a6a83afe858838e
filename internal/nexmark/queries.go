package nexmark

import (
	"fmt"
	"slices"
	"time"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// Serdes of the topics: keys are ids (serde.Int64), values JSON, written and
// read by the event types' own codec (codec.go), byte for byte what
// encoding/json writes and reads.
var (
	PersonSerde  serde.Serde[Person]  = personSerde{}
	AuctionSerde serde.Serde[Auction] = auctionSerde{}
	BidSerde     serde.Serde[Bid]     = bidSerde{}
)

// Grace is the grace period of the windowed queries (q5, q7, q8), in event
// time. Events are generated in event-time order, but q7 and q8 read
// repartition topics that several tasks write to, whose records arrive
// only roughly in time order.
const Grace = time.Minute

// Query is one Nexmark query written with the DSL.
type Query struct {
	Name   string
	Doc    string
	Inputs []string // the topics it reads
	Output string   // the topic it writes
	// Rekeyed: every input record also goes through a repartition topic
	// once (q7, q8), so an app has processed twice the input when done.
	// The other queries' repartitioned records depend on what the record
	// caches absorb.
	Rekeyed bool
	build   func(b *stream.Builder, out string, s Serdes)
}

// MinProcessed is how many records an app running the query processes at
// least, input records and repartitioned ones, over input records.
func (q Query) MinProcessed(input int64) int64 {
	if q.Rekeyed {
		return 2 * input
	}
	return input
}

// Build returns the query's topology over events written as JSON.
func (q Query) Build() (*topology.Topology, error) { return q.BuildWith(JSON) }

// BuildWith returns the query's topology over events written with s. The
// query's own results keep their JSON serdes whatever s is, but q0 and q1,
// which pass bids through, write them with s.Bid.
func (q Query) BuildWith(s Serdes) (*topology.Topology, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	b := stream.NewBuilder()
	q.build(b, q.Output, s)
	return b.Build()
}

// Queries are the queries, by name.
var Queries = map[string]Query{
	"q0": {Name: "q0", Doc: "pass-through: every bid, unchanged", Inputs: []string{TopicBids}, build: q0},
	"q1": {Name: "q1", Doc: "currency conversion: every bid, its price in euro cents (price*908/1000)", Inputs: []string{TopicBids}, build: q1},
	"q2": {Name: "q2", Doc: "selection: the bids on auctions whose id is a multiple of 123", Inputs: []string{TopicBids}, build: q2},
	"q3": {Name: "q3", Doc: "local item suggestion: auctions of category 10 by sellers in OR, ID or CA, with the seller's name, city and state", Inputs: []string{TopicPersons, TopicAuctions}, build: q3},
	"q4": {Name: "q4", Doc: "average price per category: the highest bid of every auction made while it ran, averaged per category", Inputs: []string{TopicAuctions, TopicBids}, build: q4},
	"q5": {Name: "q5", Doc: "hot items: bids per auction in hopping windows of 10 s every 2 s, and per window the auctions with the most", Inputs: []string{TopicBids}, build: q5},
	"q7": {Name: "q7", Doc: "highest bid: per tumbling window of 10 s, the bids with the highest price", Inputs: []string{TopicBids}, Rekeyed: true, build: q7},
	"q8": {Name: "q8", Doc: "new users: people who opened an auction in the tumbling 10 s window they registered in", Inputs: []string{TopicPersons, TopicAuctions}, Rekeyed: true, build: q8},
}

// QueryNames are the query names in order.
var QueryNames = []string{"q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8"}

func init() {
	for name, q := range Queries {
		q.Output = "nexmark-" + name
		Queries[name] = q
	}
}

// Lookup returns the query named name.
func Lookup(name string) (Query, error) {
	q, ok := Queries[name]
	if !ok {
		return Query{}, fmt.Errorf("nexmark: no query %q (have %v)", name, QueryNames)
	}
	return q, nil
}

func bids(b *stream.Builder, s Serdes) stream.Stream[int64, Bid] {
	return stream.From(b, TopicBids, serde.Int64, s.Bid)
}

func q0(b *stream.Builder, out string, s Serdes) {
	bids(b, s).To(out)
}

// q1 converts prices in integer cents: Flink's q1 multiplies by 0.908 in
// floating point, Beam's by 89/100 in integers.
func q1(b *stream.Builder, out string, s Serdes) {
	stream.MapValues(bids(b, s), func(v Bid) Bid {
		v.Price = v.Price * 908 / 1000
		return v
	}).To(out, stream.WithValueSerde(s.Bid))
}

// Q2 is q2's result: an auction and a bid price.
type Q2 struct {
	Auction int64 `json:"auction"`
	Price   int64 `json:"price"`
}

func q2(b *stream.Builder, out string, s Serdes) {
	sel := bids(b, s).Filter(func(_ int64, v Bid) bool { return v.Auction%123 == 0 })
	stream.MapValues(sel, func(v Bid) Q2 { return Q2{Auction: v.Auction, Price: v.Price} }).To(out)
}

// Q3 is q3's result, keyed by auction id.
type Q3 struct {
	Name  string `json:"name"`
	City  string `json:"city"`
	State string `json:"state"`
	ID    int64  `json:"id"` // the auction's
}

// q3 joins auctions to their sellers with a foreign-key table-table join
// rather than a stream-table join: Nexmark's join is symmetric, and a
// seller may register a little after their auction (the generator's
// person-id lead), which a stream-table join would miss.
func q3(b *stream.Builder, out string, s Serdes) {
	persons := stream.TableOf(b, TopicPersons, serde.Int64, s.Person, stream.Materialized("q3-persons")).
		Filter(func(_ int64, p Person) bool { return p.State == "OR" || p.State == "ID" || p.State == "CA" })
	auctions := stream.TableOf(b, TopicAuctions, serde.Int64, s.Auction, stream.Materialized("q3-auctions")).
		Filter(func(_ int64, a Auction) bool { return a.Category == 10 })
	stream.JoinForeignKey(auctions, persons, func(a Auction) int64 { return a.Seller },
		func(a Auction, p Person) Q3 { return Q3{Name: p.Name, City: p.City, State: p.State, ID: a.ID} },
		stream.Materialized("q3-joined")).
		ToStream().To(out)
}

// AuctionPrice is an auction's category and highest valid bid so far.
type AuctionPrice struct {
	Category int64 `json:"category"`
	Price    int64 `json:"price"`
}

// Q4 is q4's result, keyed by category: the sum and count of the winning
// prices and their average.
type Q4 struct {
	Sum   int64   `json:"sum"`
	Count int64   `json:"count"`
	Avg   float64 `json:"avg"`
}

type bidInAuction struct {
	Bid     Bid     `json:"bid"`
	Auction Auction `json:"auction"`
}

// q4 follows Flink's q4: an auction's final price is its highest bid made
// between its opening and its expiry (no reserve check), updated as bids
// come; the average per category is over those prices. The bids topic is
// keyed by auction id, as the auctions topic is: no repartition before the
// join. A bid before its auction opened is outside the auction's span
// anyway, so a stream-table join loses nothing.
func q4(b *stream.Builder, out string, s Serdes) {
	auctions := stream.TableOf(b, TopicAuctions, serde.Int64, s.Auction, stream.Materialized("q4-auctions"))
	joined := stream.JoinTable(bids(b, s), auctions, func(v Bid, a Auction) bidInAuction { return bidInAuction{Bid: v, Auction: a} }).
		Filter(func(_ int64, j bidInAuction) bool {
			return j.Bid.DateTime >= j.Auction.DateTime && j.Bid.DateTime <= j.Auction.Expires
		})
	winning := stream.Aggregate(joined.GroupByKey(), func() AuctionPrice { return AuctionPrice{Price: -1} },
		func(_ int64, j bidInAuction, agg AuctionPrice) AuctionPrice {
			return AuctionPrice{Category: j.Auction.Category, Price: max(agg.Price, j.Bid.Price)}
		}, stream.Materialized("q4-winning"))
	perCategory := stream.GroupTableBy(winning, func(_ int64, p AuctionPrice) (int64, int64) { return p.Category, p.Price },
		stream.Named("q4-by-category"))
	stream.AggregateTable(perCategory, func() Q4 { return Q4{} },
		func(_ int64, price int64, agg Q4) Q4 { return avg(agg.Sum+price, agg.Count+1) },
		func(_ int64, price int64, agg Q4) Q4 { return avg(agg.Sum-price, agg.Count-1) },
		stream.Materialized("q4-averages")).
		ToStream().To(out)
}

func avg(sum, count int64) Q4 {
	q := Q4{Sum: sum, Count: count}
	if count > 0 {
		q.Avg = float64(sum) / float64(count)
	}
	return q
}

// AuctionCount is an auction and how many bids it got in a window.
type AuctionCount struct {
	Auction int64 `json:"auction"`
	Count   int64 `json:"count"`
}

// Q5 is q5's result, keyed by window start: the window's highest bid count
// and the auctions (ascending) that have it.
type Q5 struct {
	Count    int64   `json:"count"`
	Auctions []int64 `json:"auctions"`
}

// q5 counts bids per auction and window, then keeps per window the largest
// count and the auctions with it. The second step sees the counts as they
// are updated, not only final ones; that gives the same maximum, because
// an auction's count in a window only grows: the largest update is the
// largest final count, and an auction with an update equal to it has that
// final count.
func q5(b *stream.Builder, out string, s Serdes) {
	counts := stream.WindowedBy(bids(b, s).GroupByKey(), stream.Hopping(10*time.Second, 2*time.Second, Grace)).
		Count(stream.Materialized("q5-counts")).
		ToStream()
	byWindow := stream.Map(counts, func(w stream.Windowed[int64], n int64) (int64, AuctionCount) {
		return w.Start, AuctionCount{Auction: w.Key, Count: n}
	}).GroupByKey(stream.Named("q5-by-window"), stream.WithSerdes(serde.Int64, AuctionCountSerde))
	stream.Aggregate(byWindow, func() Q5 { return Q5{} }, func(_ int64, c AuctionCount, agg Q5) Q5 {
		switch {
		case c.Count > agg.Count:
			return Q5{Count: c.Count, Auctions: []int64{c.Auction}}
		case c.Count == agg.Count:
			if i, found := slices.BinarySearch(agg.Auctions, c.Auction); !found {
				agg.Auctions = slices.Insert(slices.Clone(agg.Auctions), i, c.Auction)
			}
		}
		return agg
	}, stream.Materialized("q5-hottest"), stream.WithValueSerde[Q5](Q5Serde)).
		ToStream().To(out)
}

// Q7 is q7's result, keyed by window start: the highest price of the
// window and the bids with it, in the order processed.
type Q7 struct {
	Price int64 `json:"price"`
	Bids  []Bid `json:"bids"`
}

// q7 needs every bid of a window in one place: all bids go to one key
// (hence one partition), as a global maximum does in any engine.
func q7(b *stream.Builder, out string, s Serdes) {
	all := stream.SelectKey(bids(b, s), func(int64, Bid) int64 { return 0 }).GroupByKey(stream.Named("q7-all"))
	highest := stream.WindowedAggregate(stream.WindowedBy(all, stream.Tumbling(10*time.Second, Grace)),
		func() Q7 { return Q7{Price: -1} },
		func(_ int64, v Bid, agg Q7) Q7 {
			switch {
			case v.Price > agg.Price:
				return Q7{Price: v.Price, Bids: []Bid{v}}
			case v.Price == agg.Price:
				return Q7{Price: v.Price, Bids: append(slices.Clip(agg.Bids), v)}
			}
			return agg
		}, stream.Materialized("q7-highest"))
	stream.SelectKey(highest.ToStream(), func(w stream.Windowed[int64], _ Q7) int64 { return w.Start }).To(out)
}

// PersonWindow is a person in a tumbling window: q8's join key.
type PersonWindow struct {
	ID    int64 `json:"id"`
	Start int64 `json:"start"`
}

// Q8 is q8's result, keyed by PersonWindow.
type Q8 struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Start int64  `json:"start"`
}

// window8 is the start of the tumbling 10 s window holding ts.
func window8(ts int64) int64 { return ts - ts%10_000 }

// q8 joins people to auctions on (person id, window start): both sides
// keyed by it, the join's 10 s span only bounds how long records are kept,
// since records of one tumbling window are less than 10 s apart. A person
// with several auctions in the window joins several times; a reduction on
// the key keeps one result each, as Flink's GROUP BY does.
func q8(b *stream.Builder, out string, s Serdes) {
	persons := stream.SelectKey(stream.From(b, TopicPersons, serde.Int64, s.Person),
		func(_ int64, p Person) PersonWindow { return PersonWindow{ID: p.ID, Start: window8(p.DateTime)} })
	auctions := stream.SelectKey(stream.From(b, TopicAuctions, serde.Int64, s.Auction),
		func(_ int64, a Auction) PersonWindow { return PersonWindow{ID: a.Seller, Start: window8(a.DateTime)} })
	joined := stream.Join(persons, auctions, func(p Person, a Auction) Q8 {
		return Q8{ID: p.ID, Name: p.Name, Start: window8(p.DateTime)}
	}, stream.JoinWithin(10*time.Second, Grace), stream.Named("q8-join"))
	joined.GroupByKey().Reduce(func(first, _ Q8) Q8 { return first }, stream.Materialized("q8-new-users")).
		ToStream().To(out)
}
