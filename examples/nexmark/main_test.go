package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/internal/nexmark"
)

const (
	testEvents = 5000
	testRate   = 250 // 20 s of event time
)

func testBids(t *testing.T) []nexmark.Bid {
	g, err := nexmark.NewGenerator(nexmark.Config{Seed: 9, EventsPerSecond: testRate})
	if err != nil {
		t.Fatal(err)
	}
	var bids []nexmark.Bid
	for _, e := range g.Generate(testEvents) {
		if e.Kind == nexmark.KindBid {
			bids = append(bids, *e.Bid)
		}
	}
	return bids
}

// runUntil runs query on the embedded broker until its latest output per
// key, as JSON of key and value, is want.
func runUntil(t *testing.T, query string, g runnel.Guarantee, want map[string]string, decodeKey func([]byte) string) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var got map[string]string
	res, err := Run(ctx, Config{Query: query, Events: testEvents, Rate: testRate, Seed: 9, Guarantee: g,
		CommitInterval: 100 * time.Millisecond, Partitions: 3, StateDir: t.TempDir()},
		func(r *Result) bool {
			got = map[string]string{}
			for k, v := range r.Latest {
				got[decodeKey([]byte(k))] = string(v)
			}
			return maps.Equal(got, want)
		})
	if err != nil {
		t.Fatalf("%v; %d of %d results match", err, matching(got, want), len(want))
	}
	return res
}

func matching(got, want map[string]string) int {
	n := 0
	for k, v := range want {
		if got[k] == v {
			n++
		}
	}
	return n
}

func int64Key(b []byte) string { return fmt.Sprint(int64(binary.BigEndian.Uint64(b))) }

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAppQ2 runs q2 (selection) on the embedded broker under exactly-once
// and checks every selected bid is in the output, once.
func TestAppQ2(t *testing.T) {
	bids := testBids(t)
	var want []string
	for _, b := range bids {
		if b.Auction%123 == 0 {
			want = append(want, mustJSON(t, nexmark.Q2{Auction: b.Auction, Price: b.Price}))
		}
	}
	if len(want) == 0 {
		t.Fatal("no bid selected: the input is too small")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Query: "q2", Events: testEvents, Rate: testRate, Seed: 9, Guarantee: runnel.ExactlyOnce,
		CommitInterval: 100 * time.Millisecond, Partitions: 3, StateDir: t.TempDir()},
		func(r *Result) bool { return len(r.Records) >= len(want) })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res.Records {
		got = append(got, string(r.Value))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("q2 output %v, want %v", got, want)
	}
}

// TestAppQ5 runs q5 (hot items) on the embedded broker under
// at-least-once until every window's hottest auctions are those a plain
// count finds.
func TestAppQ5(t *testing.T) {
	counts := map[int64]map[int64]int64{} // window start -> auction -> bids
	for _, b := range testBids(t) {
		first := (b.DateTime - 10_000 + 2000) / 2000 * 2000 // the earliest window (start > t - 10 s) holding it
		for s := max(first, 0); s <= b.DateTime; s += 2000 {
			if counts[s] == nil {
				counts[s] = map[int64]int64{}
			}
			counts[s][b.Auction]++
		}
	}
	want := map[string]string{}
	for start, per := range counts {
		best := nexmark.Q5{}
		for _, a := range slices.Sorted(maps.Keys(per)) {
			switch n := per[a]; {
			case n > best.Count:
				best = nexmark.Q5{Count: n, Auctions: []int64{a}}
			case n == best.Count:
				best.Auctions = append(best.Auctions, a)
			}
		}
		want[fmt.Sprint(start)] = mustJSON(t, best)
	}
	res := runUntil(t, "q5", runnel.AtLeastOnce, want, int64Key)
	if res.Dropped != 0 {
		t.Errorf("%d records dropped as late", res.Dropped)
	}
}

// TestAppQ1Avro runs q1 (currency conversion) with the events written as
// Avro, their schemas in the embedded broker's registry, and checks every
// bid comes out once, converted, as Avro the same serde reads back.
func TestAppQ1Avro(t *testing.T) {
	var want []string
	for _, b := range testBids(t) {
		b.Price = b.Price * 908 / 1000
		want = append(want, mustJSON(t, b))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Query: "q1", Events: testEvents, Rate: testRate, Seed: 9, Guarantee: runnel.ExactlyOnce,
		CommitInterval: 100 * time.Millisecond, Partitions: 3, StateDir: t.TempDir(), Format: "avro"},
		func(r *Result) bool { return len(r.Records) >= len(want) })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res.Records {
		if len(r.Value) < 5 || r.Value[0] != 0 {
			t.Fatalf("output value %x is not Avro in Confluent's wire format", r.Value)
		}
		got = append(got, res.Show(r.Value))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("q1 over Avro: %d bids out differ from the %d expected", len(got), len(want))
	}
}

func TestRunRefusesBadFormats(t *testing.T) {
	for _, cfg := range []Config{
		{Query: "q1", Events: 10, Partitions: 1, Format: "xml"},
		{Query: "q1", Events: 10, Partitions: 1, Format: "avro", Brokers: []string{"127.0.0.1:1"}},
	} {
		if _, err := Run(context.Background(), cfg, nil); err == nil {
			t.Errorf("Run(%+v) ran", cfg)
		}
	}
}
