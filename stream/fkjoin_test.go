package stream_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/runnel-dev/runnel/internal/testutil"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
)

type fkOrder struct {
	Customer string `json:"customer"`
	Amount   int    `json:"amount"`
}

// TestForeignKeyJoin: orders (a table keyed by order id) joined with the
// customer each order names (a table keyed by customer), inner and left,
// under random inserts, updates, foreign-key changes and deletes on both
// sides, with tables of different partition counts and caching on and
// off, against a reference computed from the final tables.
func TestForeignKeyJoin(t *testing.T) {
	for seed := range uint64(3) {
		rng := rand.New(rand.NewPCG(seed, 213))
		type ev struct {
			topic, key string
			val        []byte
		}
		var evs []ev
		orders, customers := map[string]fkOrder{}, map[string]string{}
		for range 800 {
			if rng.IntN(3) == 0 {
				c := fmt.Sprint("c", rng.IntN(8))
				if rng.IntN(4) == 0 {
					delete(customers, c)
					evs = append(evs, ev{"customers", c, nil})
					continue
				}
				name := fmt.Sprint("name", rng.IntN(100))
				customers[c] = name
				evs = append(evs, ev{"customers", c, []byte(name)})
				continue
			}
			id := fmt.Sprint("o", rng.IntN(30))
			if rng.IntN(5) == 0 {
				delete(orders, id)
				evs = append(evs, ev{"orders", id, nil})
				continue
			}
			o := fkOrder{Customer: fmt.Sprint("c", rng.IntN(8)), Amount: rng.IntN(100)}
			orders[id] = o
			b, _ := serde.JSON[fkOrder]().Serialize(o)
			evs = append(evs, ev{"orders", id, b})
		}
		inner, left := map[string]string{}, map[string]string{}
		for id, o := range orders {
			name, ok := customers[o.Customer]
			if ok {
				inner[id] = fmt.Sprintf("%d:%s", o.Amount, name)
				left[id] = inner[id]
			} else {
				left[id] = fmt.Sprintf("%d:?", o.Amount)
			}
		}
		for _, caching := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed=%d/caching=%t", seed, caching), func(t *testing.T) {
				b := stream.NewBuilder()
				ot := stream.TableOf(b, "orders", serde.String, serde.JSON[fkOrder]())
				ct := stream.TableOf(b, "customers", serde.String, serde.String)
				fk := func(o fkOrder) string { return o.Customer }
				stream.JoinForeignKey(ot, ct, fk, func(o fkOrder, name string) string {
					return fmt.Sprintf("%d:%s", o.Amount, name)
				}, stream.Named("inner"), stream.Materialized("inner-store")).ToStream().To("inner-out")
				stream.LeftJoinForeignKey(ot, ct, fk, func(o fkOrder, name *string) string {
					if name == nil {
						return fmt.Sprintf("%d:?", o.Amount)
					}
					return fmt.Sprintf("%d:%s", o.Amount, *name)
				}, stream.Named("left")).ToStream().To("left-out")
				topo, err := b.Build()
				if err != nil {
					t.Fatal(err)
				}
				d, err := streamtest.New(topo, streamtest.Partitions("orders", 3), streamtest.Partitions("customers", 2),
					streamtest.Caching(caching), streamtest.CommitEvery(1+int(seed)*5))
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				for i, e := range evs {
					if err := d.Pipe(e.topic, []byte(e.key), e.val, int64(i)); err != nil {
						t.Fatal(err)
					}
				}
				if err := d.Commit(); err != nil {
					t.Fatal(err)
				}
				for _, c := range []struct {
					store, topic string
					want         map[string]string
				}{{"inner-store", "inner-out", inner}, {"left-store", "left-out", left}} {
					got, err := streamtest.KeyValues(d, c.store, serde.String, serde.String)
					if err != nil {
						t.Fatal(err)
					}
					if !maps.Equal(got, c.want) {
						t.Errorf("%s: %s", c.store, testutil.MapDiff(got, c.want))
					}
					out, err := streamtest.Latest(d, c.topic, serde.String, serde.String)
					if err != nil {
						t.Fatal(err)
					}
					if !maps.Equal(out, c.want) {
						t.Errorf("%s: %s", c.topic, testutil.MapDiff(out, c.want))
					}
				}
			})
		}
	}
}
