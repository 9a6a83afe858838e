// Command replay reprocesses its input after a change of logic: it counts
// page views per page, then is changed to leave out bots, resets the
// application to the earliest input offset, clears its local state, and
// counts again from the first record.
//
//	go run ./examples/replay                    # on an embedded broker
//	go run ./examples/replay -brokers host:9092 # on any Kafka-protocol cluster
//
// The reset is what `runnel reset --application-id replay --input-topics
// page-views --to-earliest` does (runnel.ResetApplication): it commits the
// input's start offsets for the application's group and deletes its
// internal topics (here the counts' changelog). App.CleanUp then deletes
// the local stores, which would otherwise hold the first run's counts.
// Both runs write to "page-counts"; the example prints each run's final
// counts and exits (or after -timeout, or on Ctrl-C).
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
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	applicationID = "replay"
	topicViews    = "page-views"
	topicCounts   = "page-counts"
)

func main() {
	brokers := flag.String("brokers", "", "bootstrap servers (comma-separated); default: an embedded broker")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "runnel-replay-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	var addrs []string
	if *brokers != "" {
		addrs = strings.Split(*brokers, ",")
	} else {
		// The broker is started here, not by the App, because the reset
		// runs while no instance of the application does.
		b, err := broker.Start(ctx, broker.Config{DataDir: filepath.Join(dir, "broker"), Listen: "127.0.0.1:0",
			GroupInitialRebalanceDelay: -1, OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
		if err == nil {
			defer b.Close()
			err = b.WaitGroupsLoaded(ctx)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "replay:", err)
			os.Exit(1)
		}
		addrs = []string{b.Addr()}
	}
	if _, _, err := Run(ctx, addrs, filepath.Join(dir, "state"), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "replay:", err)
		os.Exit(1)
	}
}

// Views are the input: visitor -> page, bots' visitor ids start with "bot".
var Views = []struct{ Visitor, Page string }{
	{"ann", "/"}, {"bot-1", "/"}, {"bob", "/pricing"}, {"bot-1", "/pricing"}, {"ann", "/docs"},
	{"bot-2", "/docs"}, {"cy", "/"}, {"bot-2", "/"}, {"bob", "/docs"}, {"bot-1", "/docs"},
	{"cy", "/pricing"}, {"ann", "/pricing"}, {"bot-2", "/pricing"}, {"dee", "/"},
}

func isBot(visitor string) bool { return strings.HasPrefix(visitor, "bot") }

// Want is the final count per page, of every view or of humans' only.
func Want(humansOnly bool) map[string]int64 {
	want := map[string]int64{}
	for _, v := range Views {
		if !humansOnly || !isBot(v.Visitor) {
			want[v.Page]++
		}
	}
	return want
}

// counter builds the pipeline: views per page, without bots in version 2.
func counter(version int) *stream.Builder {
	b := stream.NewBuilder()
	views := stream.From(b, topicViews, serde.String, serde.String) // visitor -> page
	if version == 2 {
		views = views.Filter(func(visitor, _ string) bool { return !isBot(visitor) })
	}
	stream.GroupBy(views, func(_, page string) string { return page }, stream.Named("pages")).
		Count(stream.Materialized("counts")).
		ToStream().To(topicCounts)
	return b
}

// Run runs the example against brokers with the application's state in
// dir, printing to out, and returns the final counts of both runs.
func Run(ctx context.Context, brokers []string, dir string, out io.Writer) (before, after map[string]int64, err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, t := range []string{topicViews, topicCounts} {
		if _, err := adm.CreateTopic(ctx, 2, -1, nil, t); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return nil, nil, err
		}
	}
	for _, v := range Views {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topicViews, Key: []byte(v.Visitor), Value: []byte(v.Page)}).FirstErr(); err != nil {
			return nil, nil, err
		}
	}

	fmt.Fprintln(out, "run 1: views per page")
	if before, err = runVersion(ctx, brokers, dir, 1, nil, Want(false), out); err != nil {
		return nil, nil, err
	}
	// The second run's output follows the first's in page-counts.
	ends, err := adm.ListEndOffsets(ctx, topicCounts)
	if err != nil {
		return nil, nil, err
	}
	from := map[string]map[int32]kgo.Offset{topicCounts: {}}
	ends.Each(func(o kadm.ListedOffset) { from[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset) })

	plan, err := runnel.ResetApplication(ctx, brokers, applicationID, []string{topicViews}, runnel.ResetToEarliest())
	if err != nil {
		return nil, nil, err
	}
	for _, o := range plan.Offsets {
		fmt.Fprintf(out, "reset: %s[%d] committed %d -> %d\n", o.Topic, o.Partition, o.Committed, o.Offset)
	}
	for _, t := range plan.InternalTopics {
		fmt.Fprintf(out, "reset: deleted internal topic %s\n", t)
	}

	fmt.Fprintln(out, "run 2: views per page, bots left out, from the earliest offset")
	after, err = runVersion(ctx, brokers, dir, 2, from, Want(true), out)
	return before, after, err
}

// runVersion runs version of the pipeline, version 2 on cleaned-up local
// state, until page-counts (read from offsets from, default the start)
// holds want; it prints the counts and returns them.
func runVersion(ctx context.Context, brokers []string, dir string, version int, from map[string]map[int32]kgo.Offset, want map[string]int64, out io.Writer) (map[string]int64, error) {
	topo, err := counter(version).Build()
	if err != nil {
		return nil, err
	}
	app, err := runnel.NewApp(topo, runnel.ApplicationID(applicationID), runnel.Brokers(brokers...), runnel.StateDir(dir))
	if err != nil {
		return nil, err
	}
	if version > 1 {
		if err := app.CleanUp(); err != nil {
			return nil, err
		}
	}
	if err := app.Start(ctx); err != nil {
		return nil, err
	}
	defer app.Close()

	read := kgo.ConsumeTopics(topicCounts)
	if from != nil {
		read = kgo.ConsumePartitions(from)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), read,
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	got := map[string]int64{}
	for !maps.Equal(got, want) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return got, ctx.Err()
		}
		if err := fetches.Err0(); err != nil {
			return got, err
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if n, err := serde.Int64.Deserialize(r.Value); err == nil {
				got[string(r.Key)] = n
			}
		})
		select {
		case <-app.Done():
			return got, fmt.Errorf("application stopped: %w", app.Err())
		default:
		}
	}
	for _, page := range slices.Sorted(maps.Keys(got)) {
		fmt.Fprintf(out, "  %-10s %d\n", page, got[page])
	}
	return got, app.Close()
}
