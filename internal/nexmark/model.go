// Package nexmark generates the Nexmark benchmark's events — people
// registering, auctions opening, bids — and builds the benchmark's queries
// with the DSL (package stream).
//
// The generator follows the semantics of the Nexmark generator that Beam
// and Flink ship (the event mix, the id spaces, the hot sellers, bidders
// and auctions, the price and auction-length distributions): see
// Generator. Events are written as JSON to three topics, one per event
// type (TopicPersons, TopicAuctions, TopicBids), each keyed by the id the
// queries join or group on: persons by person id, auctions by auction id,
// bids by auction id, all as 8-byte big-endian integers (serde.Int64).
// Three topics rather than one topic with an event-type field because every
// query reads one or two of the types: with one topic every query would
// decode and filter all events, and a typed stream per topic is what a
// DSL user writes.
package nexmark

// Topics the generated events are written to.
const (
	TopicPersons  = "nexmark-persons"
	TopicAuctions = "nexmark-auctions"
	TopicBids     = "nexmark-bids"
)

// Person is a person registering to buy or sell.
type Person struct {
	ID           int64  `json:"id" avro:"id"`
	Name         string `json:"name" avro:"name"`
	EmailAddress string `json:"emailAddress" avro:"emailAddress"`
	CreditCard   string `json:"creditCard" avro:"creditCard"`
	City         string `json:"city" avro:"city"`
	State        string `json:"state" avro:"state"`
	DateTime     int64  `json:"dateTime" avro:"dateTime"` // event time, ms since the Unix epoch
	Extra        string `json:"extra" avro:"extra"`
}

// Auction is an item put up for auction by a seller (a person's ID).
type Auction struct {
	ID          int64  `json:"id" avro:"id"`
	ItemName    string `json:"itemName" avro:"itemName"`
	Description string `json:"description" avro:"description"`
	InitialBid  int64  `json:"initialBid" avro:"initialBid"` // cents
	Reserve     int64  `json:"reserve" avro:"reserve"`       // cents
	DateTime    int64  `json:"dateTime" avro:"dateTime"`     // event time, ms
	Expires     int64  `json:"expires" avro:"expires"`       // ms
	Seller      int64  `json:"seller" avro:"seller"`
	Category    int64  `json:"category" avro:"category"`
	Extra       string `json:"extra" avro:"extra"`
}

// Bid is a bid by a bidder (a person's ID) on an auction.
type Bid struct {
	Auction  int64  `json:"auction" avro:"auction"`
	Bidder   int64  `json:"bidder" avro:"bidder"`
	Price    int64  `json:"price" avro:"price"` // cents
	Channel  string `json:"channel" avro:"channel"`
	URL      string `json:"url" avro:"url"`
	DateTime int64  `json:"dateTime" avro:"dateTime"` // event time, ms
	Extra    string `json:"extra" avro:"extra"`
}

// Kind is an event's type.
type Kind uint8

// The event types.
const (
	KindPerson Kind = iota
	KindAuction
	KindBid
)

func (k Kind) String() string {
	switch k {
	case KindPerson:
		return "person"
	case KindAuction:
		return "auction"
	case KindBid:
		return "bid"
	}
	return "unknown"
}

// Event is one generated event: exactly one of Person, Auction and Bid is
// set, as Kind says.
type Event struct {
	Kind    Kind
	Person  *Person
	Auction *Auction
	Bid     *Bid
}

// Time is the event's event time in ms.
func (e Event) Time() int64 {
	switch e.Kind {
	case KindPerson:
		return e.Person.DateTime
	case KindAuction:
		return e.Auction.DateTime
	default:
		return e.Bid.DateTime
	}
}

// Topic is the topic the event is written to.
func (e Event) Topic() string {
	switch e.Kind {
	case KindPerson:
		return TopicPersons
	case KindAuction:
		return TopicAuctions
	default:
		return TopicBids
	}
}
