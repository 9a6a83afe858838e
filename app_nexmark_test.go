package runnel_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/internal/nexmark"
)

// TestAppNexmarkQ4MatchesReference: Nexmark q4 (a stream-table join of
// bids with auctions, co-partitioned, then two aggregations) over 200,000
// events on the broker gives the plain Go reference results under both
// guarantees, with the defaults. The auctions' partitions come in
// fetches of their own, often behind the bids': processed a poll at a
// time, bids were joined against auctions not read yet, and dropped.
func TestAppNexmarkQ4MatchesReference(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 events")
	}
	gen, err := nexmark.NewGenerator(nexmark.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	events := gen.Generate(200_000)
	want := q4Reference(events)
	for _, g := range []runnel.Guarantee{runnel.ExactlyOnce, runnel.AtLeastOnce} {
		t.Run(g.String(), func(t *testing.T) {
			addr := startAppBroker(t)
			q := nexmark.Queries["q4"]
			createTopics(t, addr, 4, append(q.Inputs, q.Output)...)
			cl := newTestClient(t, addr, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxBufferedRecords(100_000))
			reads := map[string]bool{}
			for _, in := range q.Inputs {
				reads[in] = true
			}
			var (
				mu   sync.Mutex
				perr error
			)
			for _, e := range events {
				r := e.Encode()
				if !reads[r.Topic] {
					continue
				}
				cl.Produce(context.Background(), &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Timestamp: time.UnixMilli(r.Timestamp)},
					func(_ *kgo.Record, err error) {
						mu.Lock()
						defer mu.Unlock()
						if err != nil && perr == nil {
							perr = err
						}
					})
			}
			if err := cl.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if perr != nil {
				t.Fatal(perr)
			}
			topo, err := q.Build()
			if err != nil {
				t.Fatal(err)
			}
			app := runApp(t, topo, nil, runnel.ApplicationID("q4-"+g.String()), runnel.Brokers(addr),
				runnel.StateDir(t.TempDir()), runnel.ProcessingGuarantee(g))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := app.WaitIdle(ctx); err != nil {
				t.Fatal(err)
			}
			got := map[int64]nexmark.Q4{}
			for _, r := range readTopic(t, addr, q.Output) {
				var v nexmark.Q4
				if err := json.Unmarshal(r.Value, &v); err != nil {
					t.Fatalf("q4 output %q: %v", r.Value, err)
				}
				got[int64(binary.BigEndian.Uint64(r.Key))] = v // the last per key is the result
			}
			if !maps.Equal(got, want) {
				n := 0
				for c, w := range want {
					if got[c] != w && n < 10 {
						t.Errorf("category %d: got %+v, want %+v", c, got[c], w)
						n++
					}
				}
				t.Fatalf("q4: %d categories, want %d", len(got), len(want))
			}
		})
	}
}

// q4Reference is q4 in plain Go: the highest bid of every auction made
// while it ran, summed and averaged per category.
func q4Reference(events []nexmark.Event) map[int64]nexmark.Q4 {
	auctions := map[int64]nexmark.Auction{}
	for _, e := range events {
		if e.Kind == nexmark.KindAuction {
			auctions[e.Auction.ID] = *e.Auction
		}
	}
	final := map[int64]int64{} // auction id -> highest bid while open
	for _, e := range events {
		if e.Kind != nexmark.KindBid {
			continue
		}
		b := e.Bid
		a, ok := auctions[b.Auction]
		if !ok || b.DateTime < a.DateTime || b.DateTime > a.Expires {
			continue
		}
		if p, seen := final[a.ID]; !seen || b.Price > p {
			final[a.ID] = b.Price
		}
	}
	out := map[int64]nexmark.Q4{}
	for id, p := range final {
		c := auctions[id].Category
		q := out[c]
		q.Sum += p
		q.Count++
		out[c] = q
	}
	for c, q := range out {
		q.Avg = float64(q.Sum) / float64(q.Count)
		out[c] = q
	}
	return out
}
