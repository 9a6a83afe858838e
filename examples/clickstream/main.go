// Command clickstream cuts each user's clicks into sessions — runs of
// clicks at most 30 s apart (session windows) — and counts the page views
// of every session.
//
//	go run ./examples/clickstream                    # on an embedded broker
//	go run ./examples/clickstream -brokers host:9092 # on any Kafka-protocol cluster
//
// A generator produces about half an hour of clicks (event time in the record
// timestamps): a few users, each browsing in bursts with pauses of minutes
// between them. The application counts views per user and session and
// writes every session's count as it changes to "session-views"; when two
// sessions merge, the older ones get a tombstone. The example reads that
// topic until it holds exactly the sessions the clicks make, prints them,
// and exits (or after -timeout, or on Ctrl-C).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	topicClicks   = "clicks"
	topicSessions = "session-views"
	gap           = 30 * time.Second
)

func main() {
	brokers := flag.String("brokers", "", "bootstrap servers (comma-separated); default: an embedded broker")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	seed := flag.Uint64("seed", 1, "seed of the generated clicks")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "runnel-clickstream-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	var addrs []string
	if *brokers != "" {
		addrs = strings.Split(*brokers, ",")
	}
	clicks := Generate(*seed, time.Now().UTC().Truncate(time.Hour))
	fmt.Printf("generated %d clicks\n", len(clicks))
	sessions, err := Run(ctx, addrs, dir, clicks)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clickstream:", err)
		os.Exit(1)
	}
	Print(os.Stdout, sessions)
}

// Session is a user's session: its first and last click (Unix ms) and how
// many pages it viewed.
type Session struct {
	User       string
	Start, End int64
	Views      int64
}

// Run runs the example against brokers (none: embedded) with its state in
// dir: it produces clicks and returns the sessions once the output holds
// exactly those the clicks make.
func Run(ctx context.Context, brokers []string, dir string, input []Click) ([]Session, error) {
	b := stream.NewBuilder()
	clicks := stream.From(b, topicClicks, serde.String, serde.String).GroupByKey() // user -> page
	stream.SessionWindowedBy(clicks, stream.Sessions(gap, time.Minute)).
		Count(stream.Materialized("sessions")).
		ToStream().To(topicSessions)
	topo, err := b.Build()
	if err != nil {
		return nil, err
	}
	opts := []runnel.AppOption{runnel.ApplicationID("clickstream"), runnel.StateDir(dir), runnel.CreateSourceTopics(2), runnel.CreateSinkTopics(2)}
	if len(brokers) > 0 {
		opts = append(opts, runnel.Brokers(brokers...))
	}
	app, err := runnel.NewApp(topo, opts...)
	if err != nil {
		return nil, err
	}
	if err := app.Start(ctx); err != nil {
		return nil, err
	}
	defer app.Close()

	cl, err := kgo.NewClient(kgo.SeedBrokers(app.Brokers()...), kgo.ConsumeTopics(topicSessions),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, -1, nil, topicSessions); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return nil, err
	}
	var recs []*kgo.Record
	for _, c := range input {
		recs = append(recs, &kgo.Record{Topic: topicClicks, Key: []byte(c.User), Value: []byte(c.Page), Timestamp: time.UnixMilli(c.Time)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, err
	}

	want := Sessions(input)
	got := map[stream.Windowed[string]]int64{} // the latest count of every live session
	windowed := stream.WindowedSerde(serde.String)
	for !maps.Equal(got, want) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := fetches.Err0(); err != nil {
			return nil, err
		}
		fetches.EachRecord(func(r *kgo.Record) {
			w, err := windowed.Deserialize(r.Key)
			if err != nil {
				return
			}
			if r.Value == nil {
				delete(got, w) // merged into a longer session
				return
			}
			if n, err := serde.Int64.Deserialize(r.Value); err == nil {
				got[w] = n
			}
		})
		select {
		case <-app.Done():
			return nil, fmt.Errorf("application stopped: %w", app.Err())
		default:
		}
	}
	return sessionList(got), app.Close()
}

// Sessions is what the application should find: each user's clicks split
// wherever two are more than the gap apart.
func Sessions(clicks []Click) map[stream.Windowed[string]]int64 {
	byUser := map[string][]int64{}
	for _, c := range clicks {
		byUser[c.User] = append(byUser[c.User], c.Time)
	}
	out := map[stream.Windowed[string]]int64{}
	for user, ts := range byUser {
		slices.Sort(ts)
		start, n := ts[0], int64(0)
		for i, t := range ts {
			if i > 0 && t-ts[i-1] > gap.Milliseconds() {
				out[stream.Windowed[string]{Key: user, Start: start, End: ts[i-1]}] = n
				start, n = t, 0
			}
			n++
		}
		out[stream.Windowed[string]{Key: user, Start: start, End: ts[len(ts)-1]}] = n
	}
	return out
}

func sessionList(m map[stream.Windowed[string]]int64) []Session {
	var out []Session
	for w, n := range m {
		out = append(out, Session{User: w.Key, Start: w.Start, End: w.End, Views: n})
	}
	slices.SortFunc(out, func(a, b Session) int {
		if c := strings.Compare(a.User, b.User); c != 0 {
			return c
		}
		return int(a.Start - b.Start)
	})
	return out
}

// Print writes one line per session.
func Print(out io.Writer, sessions []Session) {
	for _, s := range sessions {
		d := time.Duration(s.End-s.Start) * time.Millisecond
		plural := "s"
		if s.Views == 1 {
			plural = ""
		}
		fmt.Fprintf(out, "%-8s %s-%s  %6s  %2d page view%s\n", s.User,
			time.UnixMilli(s.Start).UTC().Format("15:04:05"), time.UnixMilli(s.End).UTC().Format("15:04:05"), d, s.Views, plural)
	}
}
