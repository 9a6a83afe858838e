package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// idleTopology counts the words of "events" twice over two chained
// repartition topics: per word (the stream rekeyed by word and
// repartitioned) into "word-totals", then per first letter (rekeyed again)
// into "letter-totals". Its last sub-topology reads what the second wrote
// from what the first wrote: WaitIdle must follow two stages.
func idleTopology(t *testing.T) *topology.Topology {
	return buildTopology(t, func(b *stream.Builder) {
		byWord := stream.SelectKey(stream.From(b, "events", serde.String, serde.String),
			func(_, w string) string { return w }).Repartition(stream.Named("by-word"))
		byWord.GroupByKey().Count(stream.Materialized("words")).ToStream().To("word-totals")
		stream.SelectKey(byWord, func(w, _ string) string { return w[:1] }).
			GroupByKey().Count(stream.Materialized("letters")).ToStream().To("letter-totals")
	})
}

// idleEvent is an input record of idleTopology and whether a transaction
// of the outside producer aborted it.
type idleEvent struct {
	key, word string
	aborted   bool
}

// produceIdleEvents writes n events to "events": some plainly, the others
// in transactions of their own producer, a third of those aborted. The
// last transaction aborts, so that partitions end in abort markers. It
// returns the events, in order.
func produceIdleEvents(t *testing.T, addr string, seed uint64, n int) []idleEvent {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 7))
	words := []string{"apple", "avocado", "banana", "blueberry", "cherry", "date", "elderberry", "fig"}
	plain := newTestClient(t, addr)
	txn := newTestClient(t, addr, kgo.TransactionalID(fmt.Sprint("idle-producer-", seed)))
	var evs []idleEvent
	for len(evs) < n {
		batch := 1 + rng.IntN(20)
		transactional := rng.IntN(3) > 0
		aborted := transactional && (rng.IntN(3) == 0 || len(evs)+batch >= n)
		var recs []*kgo.Record
		for range batch {
			e := idleEvent{key: fmt.Sprint("u", rng.IntN(50)), word: words[rng.IntN(len(words))], aborted: aborted}
			evs = append(evs, e)
			recs = append(recs, &kgo.Record{Topic: "events", Key: []byte(e.key), Value: []byte(e.word)})
		}
		if !transactional {
			if err := plain.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := txn.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(!aborted)); err != nil {
			t.Fatal(err)
		}
	}
	return evs
}

// idleTotals is what idleTopology's outputs must end with: the records
// per word and per first letter, aborted ones included when the
// application reads uncommitted records (at-least-once).
func idleTotals(evs []idleEvent, withAborted bool) (words, letters map[string]int64) {
	words, letters = map[string]int64{}, map[string]int64{}
	for _, e := range evs {
		if e.aborted && !withAborted {
			continue
		}
		words[e.word]++
		letters[e.word[:1]]++
	}
	return words, letters
}

// latestTotals reads topic to its last stable offset: the latest count per
// key.
func latestTotals(t *testing.T, addr, topic string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	for _, r := range readTopic(t, addr, topic) {
		v, err := decodeInt64(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		got[string(r.Key)] = v
	}
	return got
}

// checkTotals compares the outputs, read right away, with the totals of
// evs: a WaitIdle that returned before the last stage was done fails it.
func checkTotals(t *testing.T, addr string, evs []idleEvent, withAborted bool) {
	t.Helper()
	words, letters := idleTotals(evs, withAborted)
	if got := latestTotals(t, addr, "word-totals"); !maps.Equal(got, words) {
		t.Fatalf("word totals right after WaitIdle: %s", testutil.MapDiff(got, words))
	}
	if got := latestTotals(t, addr, "letter-totals"); !maps.Equal(got, letters) {
		t.Fatalf("letter totals right after WaitIdle: %s", testutil.MapDiff(got, letters))
	}
}

// TestAppWaitIdle: right after WaitIdle returns, the outputs of a
// topology with two chained repartition topics hold the totals of all the
// input produced before the call — three partitions, written plainly and
// in committed and aborted transactions of an outside producer, ending in
// abort markers — under both guarantees, on an outside broker and on the
// embedded one. Input produced afterwards is waited for by the next call.
func TestAppWaitIdle(t *testing.T) {
	for _, c := range []struct {
		g        runnel.Guarantee
		embedded bool
	}{{runnel.ExactlyOnce, false}, {runnel.AtLeastOnce, false}, {runnel.ExactlyOnce, true}, {runnel.AtLeastOnce, true}} {
		t.Run(fmt.Sprintf("%s/embedded=%t", c.g, c.embedded), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			opts := []runnel.AppOption{runnel.ApplicationID("idle"), runnel.StateDir(t.TempDir()),
				runnel.ProcessingGuarantee(c.g), runnel.CreateSourceTopics(3), runnel.CreateSinkTopics(2)}
			var addr string
			if !c.embedded {
				addr = startAppBroker(t)
				opts = append(opts, runnel.Brokers(addr))
			}
			app := runApp(t, idleTopology(t), nil, opts...)
			addr = app.Brokers()[0]
			// Under at-least-once the application reads uncommitted
			// records, aborted ones too (as Kafka Streams does).
			withAborted := c.g == runnel.AtLeastOnce
			evs := produceIdleEvents(t, addr, 1, 400)
			if err := app.WaitIdle(ctx); err != nil {
				t.Fatal(err)
			}
			checkTotals(t, addr, evs, withAborted)

			evs = append(evs, produceIdleEvents(t, addr, 2, 200)...)
			if err := app.WaitIdle(ctx); err != nil {
				t.Fatal(err)
			}
			checkTotals(t, addr, evs, withAborted)
		})
	}
}

// TestAppWaitIdleWaitsForPausedInput: WaitIdle does not return while an
// input partition holds records the application has not processed (its
// input is paused), and returns once they are.
func TestAppWaitIdleWaitsForPausedInput(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 3, "events", "word-totals", "letter-totals")
	var paused atomic.Bool
	var turns atomic.Int64
	paused.Store(true)
	app := runApp(t, idleTopology(t), func(a *runnel.App) {
		runnel.PauseInput(a, func() (pause, resume map[string][]int32) {
			turns.Add(1)
			m := map[string][]int32{"events": {1}}
			if paused.Load() {
				return m, nil
			}
			return nil, m
		})
	}, runnel.ApplicationID("idle"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()))
	// Paused after the turn that asked, so before the records come.
	testutil.Eventually(t, 30*time.Second, func() (bool, string) { return turns.Load() >= 2, "the input paused" })
	evs := produceIdleEvents(t, addr, 3, 300)
	short, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := app.WaitIdle(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitIdle with partition 1 paused: %v, want %v", err, context.DeadlineExceeded)
	}
	paused.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := app.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, addr, evs, false)
}

// TestAppWaitIdleNotRunning: WaitIdle on an App not started, or closed,
// says so at once.
func TestAppWaitIdleNotRunning(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 1, "events", "word-totals", "letter-totals")
	app, err := runnel.NewApp(idleTopology(t), runnel.ApplicationID("idle"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := app.WaitIdle(ctx); !errors.Is(err, runnel.ErrAppNotRunning) {
		t.Fatalf("WaitIdle before Start: %v", err)
	}
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := app.WaitIdle(ctx); err != nil {
		t.Fatalf("WaitIdle with no input: %v", err)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if err := app.WaitIdle(ctx); !errors.Is(err, runnel.ErrAppNotRunning) {
		t.Fatalf("WaitIdle after Close: %v", err)
	}
}

// TestAppWaitIdleAbortedTail: under exactly-once, a partition holding
// nothing but aborted transactions (and their markers) has nothing to
// process: WaitIdle returns although the application, its input there
// paused, never reads it and commits no offset for it. Under
// at-least-once the application would process the aborted records: they
// are waited for.
func TestAppWaitIdleAbortedTail(t *testing.T) {
	for _, g := range []runnel.Guarantee{runnel.ExactlyOnce, runnel.AtLeastOnce} {
		t.Run(g.String(), func(t *testing.T) {
			addr := startAppBroker(t)
			createTopics(t, addr, 2, "events", "word-totals", "letter-totals")
			app := runApp(t, idleTopology(t), func(a *runnel.App) {
				runnel.PauseInput(a, func() (pause, resume map[string][]int32) {
					return map[string][]int32{"events": {1}}, nil
				})
			}, runnel.ApplicationID("idle"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()), runnel.ProcessingGuarantee(g))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			txn := newTestClient(t, addr, kgo.TransactionalID("aborting"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			for i := range 3 {
				if err := txn.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				rec := &kgo.Record{Topic: "events", Partition: 1, Key: []byte(fmt.Sprint("u", i)), Value: []byte("aborted")}
				if err := txn.ProduceSync(ctx, rec).FirstErr(); err != nil {
					t.Fatal(err)
				}
				if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
					t.Fatal(err)
				}
			}
			plain := newTestClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err := plain.ProduceSync(ctx, &kgo.Record{Topic: "events", Partition: 0, Key: []byte("u"), Value: []byte("fig")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if g == runnel.AtLeastOnce {
				short, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				if err := app.WaitIdle(short); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("WaitIdle at-least-once with aborted records unread: %v, want %v", err, context.DeadlineExceeded)
				}
				return
			}
			if err := app.WaitIdle(ctx); err != nil {
				t.Fatalf("WaitIdle with only aborted records unread: %v", err)
			}
			checkTotals(t, addr, []idleEvent{{key: "u", word: "fig"}}, false)
		})
	}
}

// TestAppWaitIdleGlobalStore: WaitIdle does not return while the
// instance's global store lacks records produced to its topic (the
// updater held back), and returns once it holds them, so that orders
// produced right after all find their customer's credit.
func TestAppWaitIdleGlobalStore(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 2, "customers", "orders", "enriched")
	var hold atomic.Bool
	hold.Store(true)
	b := stream.NewBuilder()
	customers := stream.GlobalTableOf(b, "customers", serde.String, serde.Int64, stream.Materialized("credit"))
	stream.LeftJoinGlobal(stream.From(b, "orders", serde.String, serde.String), customers,
		func(_, c string) string { return c }, func(c string, credit *int64) string {
			if credit == nil {
				return c + ":none"
			}
			return fmt.Sprintf("%s:%d", c, *credit)
		}).To("enriched")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app := runApp(t, topo, func(a *runnel.App) { runnel.HoldGlobal(a, hold.Load) },
		runnel.ApplicationID("credit"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()))
	cl := newTestClient(t, addr)
	var credits []int64
	var orders []string
	want := map[string]string{}
	for i := range int64(100) {
		credits = append(credits, i, 100+i)
		orders = append(orders, fmt.Sprint("o", i), fmt.Sprint("c", i))
		want[fmt.Sprint("o", i)] = fmt.Sprintf("c%d:%d", i, 100+i)
	}
	produceCredits(t, cl, credits...)
	short, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := app.WaitIdle(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitIdle with the global store held back: %v, want %v", err, context.DeadlineExceeded)
	}
	hold.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := app.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	produceOrders(t, cl, orders...)
	if err := app.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if got := enriched(t, addr); !maps.Equal(got, want) {
		t.Fatalf("orders right after WaitIdle: %s", testutil.MapDiff(got, want))
	}
}
