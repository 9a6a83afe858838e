// Command pipeline is the README's "Writing a pipeline" program: orders
// counted per category per minute, each window's count printed once when
// the window closes, on an embedded broker.
//
//	go run ./examples/pipeline
//
// It prints the topology, produces a few minutes of orders to the topic
// "orders" of the embedded broker, prints the final counts, and exits once
// every window has closed (or on Ctrl-C).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

// Order is what the topic "orders" holds, as JSON.
type Order struct {
	ID       string `json:"id"`
	Category string `json:"category"`
}

// windows is how many windows the input below fills: minutes 0, 1 and 2.
const windows = 3

// README begin
func run(ctx context.Context, out io.Writer) error {
	b := stream.NewBuilder()
	orders := stream.From(b, "orders", serde.String, serde.JSON[Order]())
	perCategory := stream.GroupBy(orders, func(_ string, o Order) string { return o.Category })
	stream.WindowedBy(perCategory, stream.Tumbling(time.Minute, 30*time.Second)).Count().
		Suppress(stream.UntilWindowCloses()).
		ToStream().
		Peek(func(w stream.Windowed[string], n int64) {
			fmt.Fprintf(out, "%s %s: %d orders\n", time.UnixMilli(w.Start).UTC().Format("15:04"), w.Key, n)
		}).
		To("orders-per-minute")
	topo, err := b.Build()
	if err != nil {
		return err
	}
	fmt.Fprintln(out, topo.Describe())

	// No Brokers option: the application runs on an embedded broker, with
	// its data and the application's state in dir; it creates the topics
	// "orders" and "orders-per-minute".
	dir, err := os.MkdirTemp("", "runnel-pipeline-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	app, err := runnel.NewApp(topo, runnel.ApplicationID("orders-per-minute"), runnel.StateDir(dir),
		runnel.CreateSourceTopics(1), runnel.CreateSinkTopics(1))
	if err != nil {
		return err
	}
	if err := app.Start(ctx); err != nil {
		return err
	}
	defer app.Close()

	// Input: books and toys over three minutes, then an order at minute 5
	// that moves stream time past the windows' end and grace.
	cl, err := kgo.NewClient(kgo.SeedBrokers(app.Brokers()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now().UTC().Truncate(time.Minute)
	for i, at := range []time.Duration{0, 20 * time.Second, 70 * time.Second, 80 * time.Second, 150 * time.Second, 5 * time.Minute} {
		o := Order{ID: fmt.Sprint(i), Category: []string{"books", "toys"}[i%2]}
		v, _ := json.Marshal(o)
		rec := &kgo.Record{Topic: "orders", Key: []byte(o.ID), Value: v, Timestamp: start.Add(at)}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			return err
		}
	}
	// Once the application has processed all of it, every window the
	// input closed has been printed.
	return app.WaitIdle(ctx)
}

// README end
