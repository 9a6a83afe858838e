// Command avro runs a pipeline over Avro topics, its schemas in a schema
// registry: a service writes orders in Avro (Confluent's wire format,
// with the schema it registered), the application reads them into a Go
// struct, prices each order and writes the totals as Avro records whose
// schema it derives from a Go struct and registers on its first write.
//
//	go run ./examples/avro                    # on an embedded broker and its registry
//	go run ./examples/avro -brokers host:9092 -registry http://host:8081
//
// The service writes with an older schema than the application reads
// with: its orders have no coupon field, which the application's Order
// has as a pointer (an Avro ["null","string"] with default null), so the
// registry's schema resolution reads them with no coupon. It exits once
// every total was read back, after -timeout, or on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
)

const (
	topicOrders = "orders-avro"
	topicTotals = "order-totals-avro"
)

// Item is a line of an order.
type Item struct {
	SKU   string  `avro:"sku"`
	Qty   int32   `avro:"qty"`
	Price float64 `avro:"price"`
}

// Order is an order as the application reads it. Its Avro schema is
// derived from the struct: record "shop.Order".
type Order struct {
	ID       int64     `avro:"id"`
	Customer string    `avro:"customer"`
	Items    []Item    `avro:"items"`
	Coupon   *string   `avro:"coupon"`
	PlacedAt time.Time `avro:"placed_at"`
}

// Total is what the application writes per order.
type Total struct {
	OrderID  int64     `avro:"order_id"`
	Customer string    `avro:"customer"`
	Items    int32     `avro:"items"`
	Amount   float64   `avro:"amount"`
	PlacedAt time.Time `avro:"placed_at"`
}

// serviceSchema is the schema the order service writes with: an older
// version of Order, without the coupon.
const serviceSchema = `{"type":"record","name":"Order","namespace":"shop","fields":[
	{"name":"id","type":"long"},
	{"name":"customer","type":"string"},
	{"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[
		{"name":"sku","type":"string"},{"name":"qty","type":"int"},{"name":"price","type":"double"}]}}},
	{"name":"placed_at","type":{"type":"long","logicalType":"timestamp-millis"}}]}`

// Orders are what the service writes.
func Orders() []Order {
	at := time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)
	return []Order{
		{ID: 1, Customer: "ann", Items: []Item{{"pen", 3, 1.5}, {"ink", 1, 4}}, PlacedAt: at},
		{ID: 2, Customer: "bob", Items: []Item{{"paper", 10, 0.25}}, PlacedAt: at.Add(time.Minute)},
		{ID: 3, Customer: "ann", Items: []Item{{"desk", 1, 120}, {"lamp", 2, 35.5}}, PlacedAt: at.Add(2 * time.Minute)},
		{ID: 4, Customer: "cy", Items: []Item{}, PlacedAt: at.Add(3 * time.Minute)},
	}
}

// Price is the application's logic: the total of an order.
func Price(o Order) Total {
	t := Total{OrderID: o.ID, Customer: o.Customer, PlacedAt: o.PlacedAt}
	for _, it := range o.Items {
		t.Items += it.Qty
		t.Amount += float64(it.Qty) * it.Price
	}
	t.Amount = math.Round(t.Amount*100) / 100
	return t
}

func main() {
	brokers := flag.String("brokers", "", "bootstrap servers (comma-separated); default: an embedded broker")
	registry := flag.String("registry", "", "schema registry URL; default: the embedded broker's (required with -brokers)")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "runnel-avro-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	var addrs []string
	if *brokers != "" {
		addrs = strings.Split(*brokers, ",")
	}
	if _, err := Run(ctx, addrs, *registry, dir, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "avro:", err)
		os.Exit(1)
	}
}

// Run runs the example against brokers and registryURL (none: the
// embedded broker and its registry) with its state in dir, printing each
// total read back to out, and returns them in order.
func Run(ctx context.Context, brokers []string, registryURL, dir string, out io.Writer) ([]Total, error) {
	if len(brokers) > 0 && registryURL == "" {
		return nil, errors.New("a registry URL is needed with brokers")
	}
	// The app's registry is known once it started (the embedded broker's
	// is on a free port), after the serdes are made: LazyRegistry
	// connects on first use.
	var app *runnel.App
	reg := serde.LazyRegistry(func() (*sr.Client, error) { return sr.NewClient(sr.URLs(app.RegistryURL())) })
	orders, err := serde.Avro[Order](reg, serde.AvroNamespace("shop"), serde.AvroTopic(topicOrders))
	if err != nil {
		return nil, err
	}
	totals, err := serde.Avro[Total](reg, serde.AvroNamespace("shop"), serde.AvroTopic(topicTotals))
	if err != nil {
		return nil, err
	}
	b := stream.NewBuilder()
	stream.MapValues(stream.From(b, topicOrders, serde.String, orders), Price).
		To(topicTotals, stream.WithSerdes(serde.String, totals))
	topo, err := b.Build()
	if err != nil {
		return nil, err
	}
	opts := []runnel.AppOption{runnel.ApplicationID("avro-example"), runnel.StateDir(dir),
		runnel.CreateSourceTopics(1), runnel.CreateSinkTopics(1)}
	if len(brokers) > 0 {
		opts = append(opts, runnel.Brokers(brokers...))
	}
	if registryURL != "" {
		opts = append(opts, runnel.SchemaRegistryURL(registryURL))
	}
	if app, err = runnel.NewApp(topo, opts...); err != nil {
		return nil, err
	}
	if err := app.Start(ctx); err != nil {
		return nil, err
	}
	defer app.Close()

	// The order service: its own schema, registered under the topic's
	// subject, its records built as maps.
	service, err := serde.AvroGeneric(reg, serviceSchema, serde.AvroTopic(topicOrders))
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(app.Brokers()...), kgo.ConsumeTopics(topicTotals),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, nil, topicTotals); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return nil, err
	}
	input := Orders()
	for _, o := range input {
		items := make([]any, len(o.Items))
		for i, it := range o.Items {
			items[i] = map[string]any{"sku": it.SKU, "qty": it.Qty, "price": it.Price}
		}
		v, err := service.Serialize(map[string]any{"id": o.ID, "customer": o.Customer, "items": items, "placed_at": o.PlacedAt})
		if err != nil {
			return nil, err
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topicOrders, Key: []byte(o.Customer), Value: v}).FirstErr(); err != nil {
			return nil, err
		}
	}
	var got []Total
	for len(got) < len(input) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return got, ctx.Err()
		}
		if err := fetches.Err0(); err != nil {
			return got, err
		}
		var derr error
		fetches.EachRecord(func(r *kgo.Record) {
			t, err := totals.Deserialize(r.Value)
			if err != nil {
				derr = err
				return
			}
			got = append(got, t)
			fmt.Fprintf(out, "order %d  %-4s %3d items  %8.2f  %s\n", t.OrderID, t.Customer, t.Items, t.Amount, t.PlacedAt.Format(time.RFC3339))
		})
		if derr != nil {
			return got, derr
		}
		select {
		case <-app.Done():
			return got, fmt.Errorf("application stopped: %w", app.Err())
		default:
		}
	}
	return got, app.Close()
}
