package stream_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
	"github.com/runnel-dev/runnel/topology"
)

type winKey struct {
	key   string
	start int64
}

// TestWindowsWithLateData: tumbling and hopping windows with grace.
// Records inside grace update their windows, later ones are dropped and
// counted; with suppression each window emits exactly one final result.
func TestWindowsWithLateData(t *testing.T) {
	const size, grace = 10_000, 5_000
	for _, tc := range []struct {
		name    string
		w       stream.TimeWindows
		advance int64
	}{
		{"tumbling", stream.Tumbling(size*time.Millisecond, grace*time.Millisecond), size},
		{"hopping", stream.Hopping(size*time.Millisecond, 5*time.Second, grace*time.Millisecond), 5_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(19, uint64(tc.advance)))
			type ev struct {
				key string
				ts  int64
			}
			var evs []ev
			now := int64(0)
			for range 400 {
				now += rng.Int64N(700)
				ts := now
				if rng.IntN(5) == 0 { // out of order, sometimes beyond grace
					ts = max(0, now-rng.Int64N(3*grace))
				}
				evs = append(evs, ev{fmt.Sprint("k", rng.IntN(3)), ts})
			}
			evs = append(evs, ev{"end", now + 10*size}) // closes every earlier window

			// Reference: the processor's stream time is the largest timestamp
			// seen; a window [s, s+size) accepts a record while s+size > time - grace.
			want := map[winKey]int64{}
			var dropped int64
			observed := int64(-1)
			for _, e := range evs {
				observed = max(observed, e.ts)
				for s := (max(e.ts-size+tc.advance, 0) / tc.advance) * tc.advance; s <= e.ts; s += tc.advance {
					if s+size <= e.ts {
						continue
					}
					if s+size <= observed-grace {
						dropped++
						continue
					}
					want[winKey{e.key, s}]++
				}
			}
			closed := map[winKey]int64{}
			for k, n := range want {
				if k.start+size+grace <= observed {
					closed[k] = n
				}
			}

			b := stream.NewBuilder()
			counts := stream.WindowedBy(stream.From(b, "events", serde.String, serde.String).GroupByKey(), tc.w).
				Count(stream.Materialized("counts"))
			counts.ToStream().To("updates")
			counts.Suppress(stream.UntilWindowCloses()).ToStream().To("final")
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d, err := streamtest.New(topo, streamtest.Caching(false))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			in := streamtest.Input(d, "events", serde.String, serde.String)
			for _, e := range evs {
				if err := in.Pipe(e.key, "x", e.ts); err != nil {
					t.Fatal(err)
				}
			}
			store, err := streamtest.Windows(d, "counts", serde.String, serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			got := map[winKey]int64{}
			for k, v := range store {
				got[winKey{k.Key, k.Start}] = v
			}
			// The store may have expired old windows (retention size+grace).
			for k, v := range got {
				if want[k] != v {
					t.Errorf("store window %v = %d, want %d", k, v, want[k])
				}
			}
			if n := d.Dropped()[topology.DropLate]; n != dropped || dropped == 0 {
				t.Errorf("dropped late = %d, want %d (> 0)", n, dropped)
			}
			updates, err := streamtest.Latest(d, "updates", stream.WindowedSerde(serde.String), serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			latest := map[winKey]int64{}
			for k, v := range updates {
				latest[winKey{k.Key, k.Start}] = v
			}
			if !maps.Equal(latest, want) {
				t.Errorf("latest updates differ from reference:\n got %v\nwant %v", latest, want)
			}
			final, err := streamtest.Output(d, "final", stream.WindowedSerde(serde.String), serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			emitted := map[winKey]int64{}
			for _, r := range final {
				k := winKey{r.Key.Key, r.Key.Start}
				if _, dup := emitted[k]; dup {
					t.Errorf("window %v emitted twice", k)
				}
				emitted[k] = r.Value
			}
			if !maps.Equal(emitted, closed) {
				t.Errorf("suppressed finals differ:\n got %v\nwant %v", emitted, closed)
			}
		})
	}
}

type order struct {
	ID       int    `json:"id"`
	Customer string `json:"customer"`
	Amount   int    `json:"amount"`
}

type profile struct {
	Name string `json:"name"`
	Tier string `json:"tier"`
}

// TestJoinsMatchReference: orders joined with the latest customer profile
// (stream-table), clicks joined with impressions inside 10 minutes
// (stream-stream), and table-table joins, against reference computations.
func TestJoinsMatchReference(t *testing.T) {
	t.Run("stream-table", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(20, 1))
		b := stream.NewBuilder()
		customers := stream.TableOf(b, "customers", serde.String, serde.JSON[profile]())
		orders := stream.From(b, "orders", serde.Int64, serde.JSON[order]())
		byCustomer := stream.SelectKey(orders, func(_ int64, o order) string { return o.Customer })
		enrich := func(o order, p profile) string { return fmt.Sprintf("%d:%s:%s:%d", o.ID, p.Name, p.Tier, o.Amount) }
		stream.JoinTable(byCustomer, customers, enrich).To("enriched")
		stream.LeftJoinTable(byCustomer, customers, func(o order, p *profile) string {
			if p == nil {
				return fmt.Sprintf("%d:?:?:%d", o.ID, o.Amount)
			}
			return enrich(o, *p)
		}).To("enriched-left")
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		d, err := streamtest.New(topo, streamtest.Caching(false), streamtest.DefaultPartitions(3))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		cin := streamtest.Input(d, "customers", serde.String, serde.JSON[profile]())
		oin := streamtest.Input(d, "orders", serde.Int64, serde.JSON[order]())
		latest := map[string]profile{}
		want := map[string][]string{}
		wantLeft := map[string][]string{}
		for i := range 500 {
			c := fmt.Sprint("c", rng.IntN(10))
			switch rng.IntN(4) {
			case 0:
				p := profile{Name: "name-" + c, Tier: []string{"gold", "silver", "bronze"}[rng.IntN(3)]}
				latest[c] = p
				if err := cin.Pipe(c, p, int64(i)); err != nil {
					t.Fatal(err)
				}
			case 1:
				if rng.IntN(4) == 0 {
					delete(latest, c)
					if err := cin.Delete(c, int64(i)); err != nil {
						t.Fatal(err)
					}
					continue
				}
				fallthrough
			default:
				o := order{ID: i, Customer: c, Amount: rng.IntN(100)}
				if p, ok := latest[c]; ok {
					want[c] = append(want[c], enrich(o, p))
					wantLeft[c] = append(wantLeft[c], enrich(o, p))
				} else {
					wantLeft[c] = append(wantLeft[c], fmt.Sprintf("%d:?:?:%d", o.ID, o.Amount))
				}
				if err := oin.Pipe(int64(i), o, int64(i)); err != nil {
					t.Fatal(err)
				}
			}
		}
		for topic, w := range map[string]map[string][]string{"enriched": want, "enriched-left": wantLeft} {
			out, err := streamtest.Output(d, topic, serde.String, serde.String)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, r := range out {
				got[r.Key] = append(got[r.Key], r.Value)
			}
			if !maps.EqualFunc(got, w, slices.Equal) {
				t.Errorf("%s:\n got %v\nwant %v", topic, got, w)
			}
		}
	})

	t.Run("stream-stream", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(20, 2))
		const window = int64(10 * time.Minute / time.Millisecond)
		b := stream.NewBuilder()
		clicks := stream.From(b, "clicks", serde.String, serde.String)
		imps := stream.From(b, "impressions", serde.String, serde.String)
		stream.Join(clicks, imps, func(c, i string) string { return c + "/" + i },
			stream.JoinWithin(10*time.Minute, time.Hour)).To("attributed")
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		d, err := streamtest.New(topo, streamtest.Caching(false), streamtest.DefaultPartitions(2))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		type ev struct {
			ad, id string
			ts     int64
		}
		var cs, is []ev
		now := int64(0)
		for i := range 400 {
			now += rng.Int64N(60_000)
			ts := max(0, now-rng.Int64N(5*60_000)) // a little out of order
			e := ev{fmt.Sprint("ad", rng.IntN(8)), fmt.Sprint(i), ts}
			if rng.IntN(2) == 0 {
				cs = append(cs, e)
				if err := d.Pipe("clicks", []byte(e.ad), []byte("c"+e.id), e.ts); err != nil {
					t.Fatal(err)
				}
			} else {
				is = append(is, e)
				if err := d.Pipe("impressions", []byte(e.ad), []byte("i"+e.id), e.ts); err != nil {
					t.Fatal(err)
				}
			}
		}
		var want []string
		for _, c := range cs {
			for _, i := range is {
				if c.ad == i.ad && c.ts-i.ts <= window && i.ts-c.ts <= window {
					want = append(want, fmt.Sprintf("%s c%s/i%s @%d", c.ad, c.id, i.id, max(c.ts, i.ts)))
				}
			}
		}
		var got []string
		for _, r := range d.Output("attributed") {
			got = append(got, fmt.Sprintf("%s %s @%d", r.Key, r.Value, r.Timestamp))
		}
		slices.Sort(want)
		slices.Sort(got)
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("joined %d, want %d (> 0)\n got %v\nwant %v", len(got), len(want), got, want)
		}
	})

	t.Run("table-table", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(20, 3))
		b := stream.NewBuilder()
		users := stream.TableOf(b, "users", serde.String, serde.String)
		emails := stream.TableOf(b, "emails", serde.String, serde.String)
		stream.JoinTables(users, emails, func(u, e string) string { return u + "<" + e + ">" }).ToStream().To("inner")
		stream.LeftJoinTables(users, emails, func(u string, e *string) string {
			if e == nil {
				return u + "<>"
			}
			return u + "<" + *e + ">"
		}).ToStream().To("left")
		stream.OuterJoinTables(users, emails, func(u, e *string) string {
			s := "?"
			if u != nil {
				s = *u
			}
			if e != nil {
				return s + "<" + *e + ">"
			}
			return s + "<>"
		}, stream.Materialized("outer-store")).ToStream().To("outer")
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		d, err := streamtest.New(topo, streamtest.Caching(false), streamtest.DefaultPartitions(2))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		us, es := map[string]string{}, map[string]string{}
		for i := range 300 {
			k := fmt.Sprint("u", rng.IntN(15))
			topic, m := "users", us
			if rng.IntN(2) == 0 {
				topic, m = "emails", es
			}
			if rng.IntN(5) == 0 {
				delete(m, k)
				if err := d.Pipe(topic, []byte(k), nil, int64(i)); err != nil {
					t.Fatal(err)
				}
				continue
			}
			v := fmt.Sprint(topic[:1], i)
			m[k] = v
			if err := d.Pipe(topic, []byte(k), []byte(v), int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		inner, left, outer := map[string]string{}, map[string]string{}, map[string]string{}
		for k, u := range us {
			if e, ok := es[k]; ok {
				inner[k] = u + "<" + e + ">"
				left[k], outer[k] = inner[k], inner[k]
			} else {
				left[k], outer[k] = u+"<>", u+"<>"
			}
		}
		for k, e := range es {
			if _, ok := us[k]; !ok {
				outer[k] = "?<" + e + ">"
			}
		}
		for topic, want := range map[string]map[string]string{"inner": inner, "left": left, "outer": outer} {
			got, err := streamtest.Latest(d, topic, serde.String, serde.String)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, want) {
				t.Errorf("%s:\n got %v\nwant %v", topic, got, want)
			}
		}
		store, err := streamtest.KeyValues(d, "outer-store", serde.String, serde.String)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(store, outer) {
			t.Errorf("outer-store:\n got %v\nwant %v", store, outer)
		}
	})
}
