// Command wordcount runs the canonical word count: lines in, counts per word
// out, printed as they change.
//
//	go run ./examples/wordcount                    # on an embedded broker
//	go run ./examples/wordcount -brokers host:9092 # on any Kafka-protocol cluster
//
// It produces a few lines to the topic "lines", runs the application, prints
// every count the topic "word-counts" receives, and exits once the counts
// are final, after -timeout, or on Ctrl-C.
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
	"strings"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Lines are what the example produces.
var Lines = []string{
	"the quick brown fox jumps over the lazy dog",
	"a stream is a table in motion",
	"a table is a stream at rest",
	"the log is the truth",
}

func main() {
	brokers := flag.String("brokers", "", "bootstrap servers (comma-separated); default: an embedded broker")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "runnel-wordcount-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	var addrs []string
	if *brokers != "" {
		addrs = strings.Split(*brokers, ",")
	}
	if _, err := Run(ctx, addrs, dir, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

// Want is the final count of every word of lines.
func Want(lines []string) map[string]int64 {
	want := map[string]int64{}
	for _, l := range lines {
		for _, w := range strings.Fields(l) {
			want[w]++
		}
	}
	return want
}

// Run runs the example against brokers (none: embedded) with its state in
// dir, printing count changes to out, and returns the counts it saw last.
func Run(ctx context.Context, brokers []string, dir string, out io.Writer) (map[string]int64, error) {
	b := stream.NewBuilder()
	lines := stream.From(b, "lines", serde.String, serde.String)
	words := stream.FlatMapValues(lines, func(line string) []string { return strings.Fields(strings.ToLower(line)) })
	stream.GroupBy(words, func(_, w string) string { return w }, stream.Named("words")).
		Count(stream.Materialized("counts")).
		ToStream().To("word-counts")
	topo, err := b.Build()
	if err != nil {
		return nil, err
	}
	opts := []runnel.AppOption{runnel.ApplicationID("wordcount"), runnel.StateDir(dir), runnel.CreateSourceTopics(1), runnel.CreateSinkTopics(1)}
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

	cl, err := kgo.NewClient(kgo.SeedBrokers(app.Brokers()...), kgo.ConsumeTopics("word-counts"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, nil, "word-counts"); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return nil, err
	}
	for _, l := range Lines {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "lines", Value: []byte(l)}).FirstErr(); err != nil {
			return nil, err
		}
	}
	want, got := Want(Lines), map[string]int64{}
	for !maps.Equal(got, want) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return got, ctx.Err()
		}
		if err := fetches.Err0(); err != nil {
			return got, err
		}
		fetches.EachRecord(func(r *kgo.Record) {
			n, err := serde.Int64.Deserialize(r.Value)
			if err != nil {
				return
			}
			got[string(r.Key)] = n
			fmt.Fprintf(out, "%-8s %d\n", r.Key, n)
		})
		select {
		case <-app.Done():
			return got, fmt.Errorf("application stopped: %w", app.Err())
		default:
		}
	}
	return got, app.Close()
}
