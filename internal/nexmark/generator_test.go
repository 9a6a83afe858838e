package nexmark

import (
	"reflect"
	"testing"
)

// TestGeneratorDeterministic checks that a seed makes the same events,
// whether made in order or one by one, and another seed other events.
func TestGeneratorDeterministic(t *testing.T) {
	a, _ := NewGenerator(Config{Seed: 1})
	b, _ := NewGenerator(Config{Seed: 1})
	c, _ := NewGenerator(Config{Seed: 2})
	all := a.Generate(500)
	for _, n := range []int64{499, 7, 0, 123} {
		if e := b.Event(n); !reflect.DeepEqual(e, all[n]) {
			t.Errorf("event %d: %+v made alone, %+v in order", n, e, all[n])
		}
	}
	if reflect.DeepEqual(all, c.Generate(500)) {
		t.Error("seeds 1 and 2 made the same events")
	}
}

// TestGeneratorMix checks the event mix (1:3:46), that ids are sequential,
// that event time advances at the configured rate, and that sellers,
// bidders and auctions named are near the latest ones.
func TestGeneratorMix(t *testing.T) {
	g, err := NewGenerator(Config{Seed: 3, FirstEventTime: 1_000_000, EventsPerSecond: 100})
	if err != nil {
		t.Fatal(err)
	}
	events := g.Generate(5000)
	var kinds [3]int
	nextPerson, nextAuction := int64(FirstPersonID), int64(FirstAuctionID)
	for n, e := range events {
		kinds[e.Kind]++
		if want := 1_000_000 + int64(n)*10; e.Time() != want {
			t.Fatalf("event %d at %d, want %d", n, e.Time(), want)
		}
		switch e.Kind {
		case KindPerson:
			if e.Person.ID != nextPerson {
				t.Fatalf("event %d: person %d, want %d", n, e.Person.ID, nextPerson)
			}
			nextPerson++
		case KindAuction:
			a := e.Auction
			if a.ID != nextAuction {
				t.Fatalf("event %d: auction %d, want %d", n, a.ID, nextAuction)
			}
			nextAuction++
			if a.Seller < FirstPersonID || a.Seller > nextPerson+personIDLead || a.Category < FirstCategoryID || a.Category >= FirstCategoryID+Categories ||
				a.Reserve <= a.InitialBid || a.Expires <= a.DateTime {
				t.Fatalf("event %d: auction %+v", n, a)
			}
		case KindBid:
			b := e.Bid
			if b.Auction < FirstAuctionID || b.Auction > nextAuction+auctionIDLead || b.Bidder > nextPerson+personIDLead || b.Price < 100 || b.Price > 100_000_000 {
				t.Fatalf("event %d: bid %+v", n, b)
			}
		}
	}
	if kinds != [3]int{100, 300, 4600} {
		t.Errorf("persons, auctions, bids = %v, want [100 300 4600]", kinds)
	}
}

func TestGeneratorConfigErrors(t *testing.T) {
	if _, err := NewGenerator(Config{FirstEventTime: -1, EventsPerSecond: -5}); err == nil {
		t.Fatal("a negative time and rate accepted")
	}
}
