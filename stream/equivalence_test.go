package stream_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
)

// TestEquivalenceCachingAndPartitions: one topology (stream aggregation after
// a re-key, table regrouping with adder/subtractor, a table-table join,
// session windows, a foreign-key join) run
// with caching on and off, various commit intervals and partition counts,
// ends with the same table contents as a plain reference computation.
func TestEquivalenceCachingAndPartitions(t *testing.T) {
	const sessionGap = 20
	build := func() *stream.Builder {
		b := stream.NewBuilder()
		// purchases: user -> amount; sum per user's first letter.
		purchases := stream.From(b, "purchases", serde.String, serde.Int64)
		stream.GroupBy(purchases, func(u string, _ int64) string { return u[:1] }).
			Reduce(func(a, v int64) int64 { return a + v }, stream.Materialized("sum-by-letter"))
		// cities: user -> city; users per city.
		cities := stream.TableOf(b, "cities", serde.String, serde.String)
		stream.GroupTableBy(cities, func(u, c string) (string, string) { return c, u }).
			Count(stream.Materialized("users-per-city"))
		// spend per user joined with the user's city.
		spend := purchases.GroupByKey().Reduce(func(a, v int64) int64 { return a + v }, stream.Materialized("spend"))
		stream.JoinTables(spend, cities, func(s int64, c string) string { return fmt.Sprintf("%s:%d", c, s) },
			stream.Materialized("spend-with-city"))
		// purchases per user session (timestamps only grow: nothing is late
		// whatever the partitioning).
		stream.SessionWindowedBy(purchases.GroupByKey(), stream.Sessions(sessionGap*time.Millisecond, 0)).
			Count(stream.Materialized("sessions"), stream.WithRetention(time.Hour))
		// each user's city joined with the city's country (foreign key).
		countries := stream.TableOf(b, "countries", serde.String, serde.String)
		stream.LeftJoinForeignKey(cities, countries, func(c string) string { return c }, func(c string, country *string) string {
			if country == nil {
				return c + "/?"
			}
			return c + "/" + *country
		}, stream.Materialized("user-country"))
		return b
	}
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 99))
		type ev struct {
			topic, key string
			val        []byte
		}
		var evs []ev
		sum, spend, city, country := map[string]int64{}, map[string]int64{}, map[string]string{}, map[string]string{}
		bought := map[string][]int64{} // purchase times per user
		for i := range 600 {
			u := fmt.Sprint([]string{"a", "b", "c", "d"}[rng.IntN(4)], rng.IntN(20))
			if rng.IntN(8) == 0 {
				c := []string{"paris", "oslo", "lima"}[rng.IntN(3)]
				if rng.IntN(3) == 0 {
					delete(country, c)
					evs = append(evs, ev{"countries", c, nil})
					continue
				}
				n := []string{"fr", "no", "pe", "xx"}[rng.IntN(4)]
				country[c] = n
				evs = append(evs, ev{"countries", c, []byte(n)})
				continue
			}
			switch rng.IntN(3) {
			case 0:
				if rng.IntN(3) == 0 {
					delete(city, u)
					evs = append(evs, ev{"cities", u, nil})
					continue
				}
				c := []string{"paris", "oslo", "lima"}[rng.IntN(3)]
				city[u] = c
				evs = append(evs, ev{"cities", u, []byte(c)})
			default:
				n := rng.Int64N(100)
				bought[u] = append(bought[u], int64(i))
				sum[u[:1]] += n
				spend[u] += n
				b, _ := serde.Int64.Serialize(n)
				evs = append(evs, ev{"purchases", u, b})
			}
		}
		perCity := map[string]int64{}
		for _, c := range city {
			perCity[c]++
		}
		// Counts of cities everyone left stay at 0, as in Kafka Streams.
		joined := map[string]string{}
		for u, s := range spend {
			if c, ok := city[u]; ok {
				joined[u] = fmt.Sprintf("%s:%d", c, s)
			}
		}
		sessions := map[string]int64{} // "user@start-end" -> purchases
		for u, ts := range bought {
			start := 0
			for i := range ts {
				if i+1 == len(ts) || ts[i+1]-ts[i] > sessionGap {
					sessions[fmt.Sprintf("%s@%d-%d", u, ts[start], ts[i])] = int64(i + 1 - start)
					start = i + 1
				}
			}
		}
		userCountry := map[string]string{}
		for u, c := range city {
			n, ok := country[c]
			if !ok {
				n = "?"
			}
			userCountry[u] = c + "/" + n
		}
		for _, parts := range []int{1, 2, 5} {
			for _, caching := range []bool{false, true} {
				commit := 1 + rng.IntN(50)
				t.Run(fmt.Sprintf("seed=%d/partitions=%d/caching=%t/commit=%d", seed, parts, caching, commit), func(t *testing.T) {
					topo, err := build().Build()
					if err != nil {
						t.Fatal(err)
					}
					d, err := streamtest.New(topo, streamtest.DefaultPartitions(parts), streamtest.Caching(caching), streamtest.CommitEvery(commit))
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
					check := func(store string, want map[string]int64) {
						got, err := streamtest.KeyValues(d, store, serde.String, serde.Int64)
						if err != nil {
							t.Fatal(err)
						}
						want = maps.Clone(want)
						for _, m := range []map[string]int64{got, want} {
							for k, v := range m {
								if v == 0 && got[k] == want[k] {
									delete(m, k) // zero sums and emptied counts: either way
								}
							}
						}
						if !maps.Equal(got, want) {
							t.Errorf("%s:\n got %v\nwant %v", store, got, want)
						}
					}
					check("sum-by-letter", sum)
					check("spend", spend)
					check("users-per-city", perCity)
					got, err := streamtest.KeyValues(d, "spend-with-city", serde.String, serde.String)
					if err != nil {
						t.Fatal(err)
					}
					if !maps.Equal(got, joined) {
						t.Errorf("spend-with-city:\n got %v\nwant %v", got, joined)
					}
					gotSessions := map[string]int64{}
					ss, err := streamtest.Sessions(d, "sessions", serde.String, serde.Int64)
					if err != nil {
						t.Fatal(err)
					}
					for k, n := range ss {
						gotSessions[fmt.Sprintf("%s@%d-%d", k.Key, k.Start, k.End)] = n
					}
					if !maps.Equal(gotSessions, sessions) {
						t.Errorf("sessions: %s", testutil.MapDiff(gotSessions, sessions))
					}
					got, err = streamtest.KeyValues(d, "user-country", serde.String, serde.String)
					if err != nil {
						t.Fatal(err)
					}
					if !maps.Equal(got, userCountry) {
						t.Errorf("user-country: %s", testutil.MapDiff(got, userCountry))
					}
				})
			}
		}
	}
}
