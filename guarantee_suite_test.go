package runnel_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
)

// The suite: a word count (with a repartition), a windowed aggregation and
// a stream-table join, each run as an application over a broker with its
// input produced in phases, and its output read back (read_committed) and
// checked against a reference computation. The same suite runs under both
// guarantees and on both brokers (Runnel's and Apache Kafka), and the
// outputs of the runs are compared with each other.
//
// Caching is off, so every update is output whatever the commit timing, and
// an output is normalized to the values of each key in offset order: one
// task writes each key, so that order is fixed by the input, whereas the
// interleaving of keys from different tasks in a partition is not.

// suiteOutput maps each output record's key to its values in offset order.
type suiteOutput map[string][]string

// suiteCase is one topology of the suite. Its topic names are prefixed, so
// that several runs share a broker.
type suiteCase struct {
	name   string
	topics []string // input and output topics, created with 3 partitions
	build  func(b *stream.Builder, prefix string)
	// feed produces the input in phases, waiting for the outputs of each,
	// and returns the output topic's content, checked against the reference.
	feed func(r *suiteRun) suiteOutput
}

// suiteRun is one case running against one broker.
type suiteRun struct {
	t      *testing.T
	addr   string
	prefix string
	cl     *kgo.Client
	app    *runnel.App
}

func (r *suiteRun) topic(name string) string { return r.prefix + name }

// produce writes key/value records (a nil value is a tombstone) with the
// given timestamps to topic.
func (r *suiteRun) produce(topic string, recs ...*kgo.Record) {
	r.t.Helper()
	for _, rec := range recs {
		rec.Topic = r.topic(topic)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		r.t.Fatal(err)
	}
}

// waitOutput polls topic until it holds n records and returns them
// normalized; more than n is a failure (duplicates, under either
// guarantee, since nothing fails).
func (r *suiteRun) waitOutput(topic string, n int, decode func(k, v []byte) (string, string)) suiteOutput {
	r.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-r.app.Done():
			r.t.Fatalf("the application stopped: %v", r.app.Err())
		default:
		}
		recs := readTopic(r.t, r.addr, r.topic(topic))
		if len(recs) > n {
			r.t.Fatalf("%s has %d records, want %d", topic, len(recs), n)
		}
		if len(recs) == n {
			out := suiteOutput{}
			slices.SortStableFunc(recs, func(a, b *kgo.Record) int { return int(a.Offset - b.Offset) })
			for _, rec := range recs {
				k, v := decode(rec.Key, rec.Value)
				out[k] = append(out[k], v)
			}
			return out
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s has %d records after 90 s, want %d", topic, len(recs), n)
		}
		time.Sleep(50 * time.Millisecond) // polling the broker
	}
}

func stringKV(k, v []byte) (string, string) { return string(k), string(v) }

func int64KV(k, v []byte) (string, string) {
	n, err := decodeInt64(v)
	if err != nil {
		return string(k), "bad: " + err.Error()
	}
	return string(k), strconv.FormatInt(n, 10)
}

func checkSuiteOutput(t *testing.T, what string, got, want suiteOutput) {
	t.Helper()
	if !maps.EqualFunc(got, want, slices.Equal) {
		for k := range maps.Keys(want) {
			if !slices.Equal(got[k], want[k]) {
				t.Errorf("%s: key %q:\n got %v\nwant %v", what, k, got[k], want[k])
			}
		}
		for k := range maps.Keys(got) {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: unexpected key %q: %v", what, k, got[k])
			}
		}
	}
}

var suiteCases = []suiteCase{
	{
		name:   "wordcount",
		topics: []string{"lines", "word-counts"},
		build: func(b *stream.Builder, p string) {
			lines := stream.From(b, p+"lines", serde.String, serde.String)
			words := stream.FlatMapValues(lines, func(line string) []string { return strings.Fields(strings.ToLower(line)) })
			stream.GroupBy(words, func(_, w string) string { return w }, stream.Named("words")).
				Count(stream.Materialized("counts")).ToStream().To(p + "word-counts")
		},
		feed: func(r *suiteRun) suiteOutput {
			var all []string
			want := suiteOutput{}
			words := 0
			for phase, n := range []int{300, 200} {
				lines := wordCountLines(uint64(40+phase), n)
				var recs []*kgo.Record
				for i, l := range lines {
					recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(len(all) + i)), Value: []byte(l)})
				}
				all = append(all, lines...)
				r.produce("lines", recs...)
				for _, l := range lines {
					words += len(strings.Fields(l))
				}
				r.waitOutput("word-counts", words, int64KV)
			}
			for w, n := range countWords(all) {
				for i := range n {
					want[w] = append(want[w], strconv.FormatInt(i+1, 10))
				}
			}
			got := r.waitOutput("word-counts", words, int64KV)
			checkSuiteOutput(r.t, "word counts", got, want)
			return got
		},
	},
	{
		name:   "windowed",
		topics: []string{"clicks", "clicks-per-10s"},
		build: func(b *stream.Builder, p string) {
			clicks := stream.From(b, p+"clicks", serde.String, serde.String).GroupByKey()
			stream.WindowedBy(clicks, stream.Tumbling(10*time.Second, time.Hour)).Count().ToStream().To(p + "clicks-per-10s")
		},
		feed: func(r *suiteRun) suiteOutput {
			// Clicks a little out of order, all within the grace period:
			// nothing is dropped, so each click updates its window once.
			rng := rand.New(rand.NewPCG(19, 19))
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			counts := map[string]int{}
			want := suiteOutput{}
			sent := 0
			for _, n := range []int{400, 300} {
				var recs []*kgo.Record
				for range n {
					user := fmt.Sprint("u", rng.IntN(8))
					ts := base.Add(time.Duration(sent)*150*time.Millisecond - time.Duration(rng.IntN(3000))*time.Millisecond)
					start := ts.UnixMilli() - ts.UnixMilli()%10_000
					k := fmt.Sprintf("%s@%d", user, start)
					counts[k]++
					want[k] = append(want[k], strconv.Itoa(counts[k]))
					recs = append(recs, &kgo.Record{Key: []byte(user), Value: []byte("click"), Timestamp: ts})
					sent++
				}
				r.produce("clicks", recs...)
				r.waitOutput("clicks-per-10s", sent, windowedKV)
			}
			got := r.waitOutput("clicks-per-10s", sent, windowedKV)
			checkSuiteOutput(r.t, "windowed counts", got, want)
			return got
		},
	},
	{
		name:   "stream-table-join",
		topics: []string{"customers", "orders", "customers-seen", "enriched"},
		build: func(b *stream.Builder, p string) {
			customers := stream.TableOf(b, p+"customers", serde.String, serde.String)
			customers.ToStream().To(p + "customers-seen") // to know when the table caught up
			orders := stream.From(b, p+"orders", serde.String, serde.String)
			stream.JoinTable(orders, customers, func(o, c string) string { return o + " for " + c }).To(p + "enriched")
		},
		feed: func(r *suiteRun) suiteOutput {
			// Profiles and orders alternate in phases, each phase waiting
			// for the previous one's output, so every order meets the
			// profile of its phase whatever the order of fetches.
			rng := rand.New(rand.NewPCG(20, 20))
			profile := map[string]string{}
			want := suiteOutput{}
			seen, enriched, order := 0, 0, 0
			for phase := range 3 {
				var recs []*kgo.Record
				for i := range 10 {
					if rng.IntN(3) == 0 && phase > 0 {
						continue
					}
					c := fmt.Sprint("c", i)
					profile[c] = fmt.Sprintf("%s-tier%d-p%d", c, rng.IntN(3), phase)
					recs = append(recs, &kgo.Record{Key: []byte(c), Value: []byte(profile[c])})
				}
				r.produce("customers", recs...)
				seen += len(recs)
				r.waitOutput("customers-seen", seen, stringKV)
				recs = recs[:0]
				for range 150 {
					c := fmt.Sprint("c", rng.IntN(12)) // c10 and c11 have no profile
					o := fmt.Sprint("order-", order)
					order++
					if p, ok := profile[c]; ok {
						want[c] = append(want[c], o+" for "+p)
						enriched++
					}
					recs = append(recs, &kgo.Record{Key: []byte(c), Value: []byte(o)})
				}
				r.produce("orders", recs...)
				r.waitOutput("enriched", enriched, stringKV)
			}
			got := r.waitOutput("enriched", enriched, stringKV)
			checkSuiteOutput(r.t, "enriched orders", got, want)
			return got
		},
	},
}

func windowedKV(k, v []byte) (string, string) {
	w, err := stream.WindowedSerde(serde.String).Deserialize(k)
	if err != nil {
		return "bad: " + err.Error(), string(v)
	}
	_, n := int64KV(nil, v)
	return fmt.Sprintf("%s@%d", w.Key, w.Start), n
}

// runSuite runs every case of the suite against addr under g, with topic
// names and application ids prefixed by prefix, and returns each case's
// output by case name.
func runSuite(t *testing.T, addr string, g runnel.Guarantee, prefix string) map[string]suiteOutput {
	t.Helper()
	// Apache Kafka answers CreateTopics before its metadata has the
	// topic; a producer that finds it missing asks again only after the
	// metadata min age (5 s by default).
	cl := newTestClient(t, addr, kgo.MetadataMinAge(50*time.Millisecond))
	adm := kadm.NewClient(cl)
	outs := map[string]suiteOutput{}
	for _, c := range suiteCases {
		t.Run(c.name, func(t *testing.T) {
			var topics []string
			for _, tp := range c.topics {
				topics = append(topics, prefix+tp)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			resp, err := adm.CreateTopics(ctx, 3, 1, nil, topics...)
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				t.Fatal(err)
			}
			app := startApp(t, func(b *stream.Builder) { c.build(b, prefix) },
				runnel.ApplicationID(prefix+c.name), runnel.Brokers(addr), runnel.ProcessingGuarantee(g),
				runnel.CommitInterval(100*time.Millisecond), runnel.CacheBytes(0))
			outs[c.name] = c.feed(&suiteRun{t: t, addr: addr, prefix: prefix, cl: cl, app: app})
			if err := app.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	return outs
}

// compareSuites checks that two runs of the suite gave the same outputs.
func compareSuites(t *testing.T, what string, a, b map[string]suiteOutput) {
	t.Helper()
	for _, c := range suiteCases {
		checkSuiteOutput(t, fmt.Sprintf("%s: %s", what, c.name), b[c.name], a[c.name])
	}
}

// TestAppGuaranteesAgree: with no failure, at-least-once gives exactly the
// outputs of exactly-once, record for record.
func TestAppGuaranteesAgree(t *testing.T) {
	addr := startAppBroker(t)
	var eos, alo map[string]suiteOutput
	t.Run("exactly_once_v2", func(t *testing.T) { eos = runSuite(t, addr, runnel.ExactlyOnce, "eos-") })
	t.Run("at_least_once", func(t *testing.T) { alo = runSuite(t, addr, runnel.AtLeastOnce, "alo-") })
	if t.Failed() {
		return
	}
	compareSuites(t, "at_least_once vs exactly_once_v2", eos, alo)
}
