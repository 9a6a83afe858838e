package nexmark

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// The event mix and id spaces of the Nexmark generator: out of every 50
// events, 1 is a person, 3 are auctions and 46 are bids, in that order
// within each run of 50.
const (
	personProportion  = 1
	auctionProportion = 3
	bidProportion     = 46
	totalProportion   = personProportion + auctionProportion + bidProportion

	// FirstPersonID, FirstAuctionID and FirstCategoryID are the smallest
	// ids generated.
	FirstPersonID   = 1000
	FirstAuctionID  = 1000
	FirstCategoryID = 10
	// Categories is how many categories auctions fall in.
	Categories = 5

	// activePeople is how many of the latest people sellers and bidders
	// are drawn from; personIDLead lets a draw go a few ids past the
	// latest person, so some auctions and bids name a person registered
	// a little later (as Nexmark's do).
	activePeople = 1000
	personIDLead = 10
	// inFlightAuctions is how many of the latest auctions bids go to;
	// auctionIDLead, as personIDLead.
	inFlightAuctions = 100
	auctionIDLead    = 10

	// Hot ratios: one draw in hotAuctionRatio goes to any in-flight
	// auction, the others to the latest "hot" one; sellers and bidders
	// likewise, one in hotSellerRatio (hotBidderRatio) being any active
	// person.
	hotAuctionRatio = 2
	hotSellerRatio  = 4
	hotBidderRatio  = 4
)

var (
	firstNames = []string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	lastNames  = []string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}
	cities     = []string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
	states     = []string{"AZ", "CA", "ID", "OR", "WA", "WY"}
	channels   = []string{"Google", "Facebook", "Baidu", "Apple"}
)

// Config configures a Generator.
type Config struct {
	// Seed makes the events: the same seed gives the same events.
	Seed uint64
	// FirstEventTime is the event time of the first event, ms since the
	// Unix epoch (default 2026-01-01T00:00:00Z).
	FirstEventTime int64
	// EventsPerSecond is how fast event time advances: event n has time
	// FirstEventTime + n/EventsPerSecond s (default 10,000).
	EventsPerSecond int64
}

// EnsureDefaults sets the unset fields to their defaults.
func (c *Config) EnsureDefaults() {
	if c.FirstEventTime == 0 {
		c.FirstEventTime = 1767225600000 // 2026-01-01T00:00:00Z
	}
	if c.EventsPerSecond == 0 {
		c.EventsPerSecond = 10_000
	}
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if c.FirstEventTime < 0 {
		errs = append(errs, fmt.Errorf("nexmark: FirstEventTime %d is negative", c.FirstEventTime))
	}
	if c.EventsPerSecond < 0 || c.EventsPerSecond > 1_000_000_000 {
		errs = append(errs, fmt.Errorf("nexmark: EventsPerSecond %d is not in [1, 1e9]", c.EventsPerSecond))
	}
	return errors.Join(errs...)
}

// String prints the values in force.
func (c Config) String() string {
	return fmt.Sprintf("seed=%d first-event-time=%d events-per-second=%d", c.Seed, c.FirstEventTime, c.EventsPerSecond)
}

// Generator makes Nexmark events. Event n is a function of the seed and n
// alone, so any range of events can be made independently and in any
// order.
type Generator struct {
	cfg Config
}

// NewGenerator returns a generator of the events cfg describes.
func NewGenerator(cfg Config) (*Generator, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Generator{cfg: cfg}, nil
}

// Generate returns events 0 to n-1.
func (g *Generator) Generate(n int64) []Event {
	out := make([]Event, n)
	for i := range n {
		out[i] = g.Event(i)
	}
	return out
}

// timeOf is the event time of event n.
func (g *Generator) timeOf(n int64) int64 {
	return g.cfg.FirstEventTime + n*1000/g.cfg.EventsPerSecond
}

// Event returns event n (n >= 0).
func (g *Generator) Event(n int64) Event {
	r := rand.New(rand.NewPCG(g.cfg.Seed, uint64(n)))
	ts := g.timeOf(n)
	switch off := n % totalProportion; {
	case off < personProportion:
		return Event{Kind: KindPerson, Person: g.person(r, n, ts)}
	case off < personProportion+auctionProportion:
		return Event{Kind: KindAuction, Auction: g.auction(r, n, ts)}
	default:
		return Event{Kind: KindBid, Bid: g.bid(r, n, ts)}
	}
}

// lastPerson is the base-0 id of the latest person registered at or
// before event n.
func lastPerson(n int64) int64 {
	epoch, off := n/totalProportion, n%totalProportion
	return epoch*personProportion + min(off, personProportion-1)
}

// lastAuction is the base-0 id of the latest auction opened at or before
// event n (-1 before the first).
func lastAuction(n int64) int64 {
	epoch, off := n/totalProportion, n%totalProportion
	switch {
	case off < personProportion:
		off = -1 // before this epoch's first auction
	case off < personProportion+auctionProportion:
		off -= personProportion
	default:
		off = auctionProportion - 1
	}
	return epoch*auctionProportion + off
}

// anyPerson draws a base-0 person id among the latest activePeople people
// of event n, or a few past the latest.
func anyPerson(r *rand.Rand, n int64) int64 {
	people := lastPerson(n) + 1
	active := min(people, activePeople)
	return people - active + r.Int64N(active+personIDLead)
}

// anyAuction draws a base-0 auction id among the in-flight auctions of
// event n, or a few past the latest.
func anyAuction(r *rand.Rand, n int64) int64 {
	last := lastAuction(n)
	lo := max(last-inFlightAuctions, 0)
	return lo + r.Int64N(last-lo+1+auctionIDLead)
}

// price is a price in cents between $1 and $1,000,000, log-uniform: most
// are small.
func price(r *rand.Rand) int64 {
	return int64(math.Round(math.Pow(10, r.Float64()*6) * 100))
}

func (g *Generator) person(r *rand.Rand, n, ts int64) *Person {
	id := FirstPersonID + lastPerson(n)
	return &Person{
		ID:           id,
		Name:         firstNames[r.IntN(len(firstNames))] + " " + lastNames[r.IntN(len(lastNames))],
		EmailAddress: word(r, 7) + "@" + word(r, 5) + ".com",
		CreditCard:   fmt.Sprintf("%04d %04d %04d %04d", r.IntN(10000), r.IntN(10000), r.IntN(10000), r.IntN(10000)),
		City:         cities[r.IntN(len(cities))],
		State:        states[r.IntN(len(states))],
		DateTime:     ts,
		Extra:        extra(r, 16),
	}
}

func (g *Generator) auction(r *rand.Rand, n, ts int64) *Auction {
	seller := anyPerson(r, n)
	if r.IntN(hotSellerRatio) > 0 {
		seller = lastPerson(n) / hotSellerRatio * hotSellerRatio
	}
	initial := price(r)
	return &Auction{
		ID:          FirstAuctionID + lastAuction(n),
		ItemName:    word(r, 20),
		Description: word(r, 100),
		InitialBid:  initial,
		Reserve:     initial + price(r),
		DateTime:    ts,
		Expires:     ts + g.auctionLength(r, n, ts),
		Seller:      FirstPersonID + seller,
		Category:    FirstCategoryID + r.Int64N(Categories),
		Extra:       extra(r, 16),
	}
}

// auctionLength draws how long an auction opened by event n at ts runs,
// in ms: uniform up to twice the event time it takes to open
// inFlightAuctions more auctions, so about that many are open at once.
func (g *Generator) auctionLength(r *rand.Rand, n, ts int64) int64 {
	events := int64(inFlightAuctions * totalProportion / auctionProportion)
	horizon := g.timeOf(n+events) - ts
	return 1 + r.Int64N(max(2*horizon, 1))
}

func (g *Generator) bid(r *rand.Rand, n, ts int64) *Bid {
	auction := anyAuction(r, n)
	if r.IntN(hotAuctionRatio) > 0 {
		auction = lastAuction(n) / hotAuctionRatio * hotAuctionRatio
	}
	bidder := anyPerson(r, n)
	if r.IntN(hotBidderRatio) > 0 {
		bidder = lastPerson(n)/hotBidderRatio*hotBidderRatio + 1
	}
	ch := r.IntN(len(channels))
	return &Bid{
		Auction:  FirstAuctionID + auction,
		Bidder:   FirstPersonID + bidder,
		Price:    price(r),
		Channel:  channels[ch],
		URL:      "https://www." + strings.ToLower(channels[ch]) + ".com/search?q=" + word(r, 8) + "&channel_id=" + strconv.Itoa(r.IntN(1000)),
		DateTime: ts,
		Extra:    extra(r, 16),
	}
}

// word is a random lower-case word of up to n letters (at least one).
func word(r *rand.Rand, n int) string {
	b := make([]byte, 1+r.IntN(n))
	for i := range b {
		b[i] = 'a' + byte(r.IntN(26))
	}
	return string(b)
}

// extra is padding of up to n characters, as Nexmark pads its events.
func extra(r *rand.Rand, n int) string {
	return word(r, n)
}
