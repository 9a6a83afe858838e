// Command orders runs an order pipeline over generated data: orders are
// enriched with their customer's region (a stream-table join against the
// compacted customers topic), revenue is summed per category in 1-minute
// tumbling windows whose final results alone are emitted, and orders are
// joined with their payments within 10 minutes.
//
//	go run ./examples/orders                    # on an embedded broker
//	go run ./examples/orders -brokers host:9092 # on any Kafka-protocol cluster
//
// It produces the customers, then orders and payments spanning several
// minutes of event time (timestamps set explicitly, so windows close as
// stream time advances), runs the application exactly-once, prints every
// final window and paid order as it arrives, and exits once all the input
// has been processed and its output read, after -timeout, or on Ctrl-C.
//
// The last minute's window stays open: closing it needs a later record
// (Suppression.WallClockClose would close it by wall-clock time; it is not
// used here, so that every run prints the same windows). The customers
// table is a regular table, co-partitioned with the orders by customer id
// (a GlobalTable would need no co-partitioning).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	applicationID = "orders"
	topicRevenue  = "revenue-per-category"
	topicPaid     = "paid-orders"

	windowSize  = time.Minute
	windowGrace = 30 * time.Second
	payWithin   = 10 * time.Minute
	payGrace    = 2 * time.Minute
)

func main() {
	brokers := flag.String("brokers", "", "bootstrap servers (comma-separated); default: an embedded broker")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	seed := flag.Uint64("seed", 1, "seed of the generated data")
	metricsAddr := flag.String("metrics-addr", "", "serve the application's Prometheus metrics at http://ADDR/metrics (e.g. :9464)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "runnel-orders-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	var addrs []string
	if *brokers != "" {
		addrs = strings.Split(*brokers, ",")
	}
	data := Generate(*seed, time.Now().UTC().Truncate(time.Minute))
	fmt.Printf("generated %d customer records, %d orders, %d payments\n", len(data.Customers), len(data.Orders), len(data.Payments))
	var opts []runnel.AppOption
	if *metricsAddr != "" {
		opts = append(opts, runnel.MetricsAddr(*metricsAddr))
	}
	res, err := Run(ctx, addrs, dir, data, os.Stdout, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
	fmt.Printf("done: %d final window results, %d paid orders\n", len(res.Revenue), len(res.Paid))
	explain(os.Stdout, data, res)
}

// explain says why the figures differ from the input's: the join pairs an
// order with a payment only within payWithin of the order, and
// each window emits one final result per category that had orders in it.
func explain(w io.Writer, d Data, res Result) {
	ordered := map[string]int64{}
	for _, o := range d.Orders {
		ordered[o.ID] = o.Time
	}
	late := 0
	for _, p := range d.Payments {
		if p.Time-ordered[p.OrderID] > payWithin.Milliseconds() {
			late++
		}
	}
	fmt.Fprintf(w, "why: %d of %d orders were paid, but %d payments came more than %v after their order, outside the join window, so %d orders show as paid\n",
		len(d.Payments), len(d.Orders), late, payWithin, len(res.Paid))
	fmt.Fprintf(w, "why: revenue is summed per category in %v windows (grace %v) and suppressed until each window closes, so each (category, window) with orders gives one final result: %d\n",
		windowSize, windowGrace, len(res.Revenue))
}

// EnrichedOrder is an order with its customer's name and region.
type EnrichedOrder struct {
	Order
	CustomerName string `json:"customer_name"`
	Region       string `json:"region"`
}

// Revenue is a window's aggregate: the sum of the orders' amounts and their
// number.
type Revenue struct {
	Cents  int64 `json:"cents"`
	Orders int64 `json:"orders"`
}

// WindowRevenue is one final result of the revenue per category: the
// window [Start, End) in Unix milliseconds.
type WindowRevenue struct {
	Category   string
	Start, End int64
	Revenue
}

// PaidOrder is an order joined with its payment.
type PaidOrder struct {
	OrderID   string `json:"order"`
	Customer  string `json:"customer"`
	Region    string `json:"region"`
	Category  string `json:"category"`
	Cents     int64  `json:"cents"`
	Method    string `json:"method"`
	OrderedAt int64  `json:"ordered_at"`
	PaidAt    int64  `json:"paid_at"`
}

// Result is what Run saw on the output topics.
type Result struct {
	Revenue []WindowRevenue
	Paid    []PaidOrder
}

// Topology builds the pipeline.
func Topology() (*topology.Topology, error) {
	b := stream.NewBuilder()
	customers := stream.TableOf(b, topicCustomers, serde.String, serde.JSON[Customer]())
	orders := stream.From(b, topicOrders, serde.String, serde.JSON[Order]())
	payments := stream.From(b, topicPayments, serde.String, serde.JSON[Payment]())

	// Stream-table join: rekeyed by customer, the orders are repartitioned
	// to meet the customers table.
	byCustomer := stream.SelectKey(orders, func(_ string, o Order) string { return o.CustomerID }, stream.Named("orders-by-customer"))
	enriched := stream.JoinTable(byCustomer, customers, func(o Order, c Customer) EnrichedOrder {
		return EnrichedOrder{Order: o, CustomerName: c.Name, Region: c.Region}
	}, stream.Named("enrich"))

	// Revenue per category in tumbling windows, final results only. The
	// suppression buffers anyway, so the aggregate does not cache.
	byCategory := stream.GroupBy(enriched, func(_ string, o EnrichedOrder) string { return o.Category }, stream.Named("by-category"))
	stream.WindowedAggregate(stream.WindowedBy(byCategory, stream.Tumbling(windowSize, windowGrace)),
		func() Revenue { return Revenue{} },
		func(_ string, o EnrichedOrder, r Revenue) Revenue {
			return Revenue{Cents: r.Cents + o.Cents, Orders: r.Orders + 1}
		},
		stream.Named("revenue"), stream.Materialized("revenue"), stream.WithValueSerde(serde.JSON[Revenue]()), stream.WithoutCaching()).
		Suppress(stream.UntilWindowCloses(), stream.Named("revenue-final")).
		ToStream().To(topicRevenue)

	// Stream-stream join: back on the order id, each order meets its
	// payment if it came within payWithin.
	byOrder := stream.SelectKey(enriched, func(_ string, o EnrichedOrder) string { return o.ID }, stream.Named("enriched-by-order"))
	stream.Join(byOrder, payments, func(o EnrichedOrder, p Payment) PaidOrder {
		return PaidOrder{OrderID: o.ID, Customer: o.CustomerName, Region: o.Region, Category: o.Category,
			Cents: o.Cents, Method: p.Method, OrderedAt: o.Time, PaidAt: p.Time}
	}, stream.JoinWithin(payWithin, payGrace), stream.Named("paid")).To(topicPaid)
	return b.Build()
}

// Run runs the example against brokers (none: embedded) with its state in
// dir: it produces d, prints the results to out as they arrive, and returns
// them once every input record has been processed and every output record
// read.
func Run(ctx context.Context, brokers []string, dir string, d Data, out io.Writer, extra ...runnel.AppOption) (Result, error) {
	var res Result
	topo, err := Topology()
	if err != nil {
		return res, err
	}
	// One partition per topic: each window's and each join's stream time
	// then advances with all the data, as the reference in the test assumes.
	opts := []runnel.AppOption{runnel.ApplicationID(applicationID), runnel.StateDir(dir), runnel.CreateSourceTopics(1), runnel.CreateSinkTopics(1)}
	if len(brokers) > 0 {
		opts = append(opts, runnel.Brokers(brokers...))
	}
	app, err := runnel.NewApp(topo, append(opts, extra...)...)
	if err != nil {
		return res, err
	}
	if err := app.Start(ctx); err != nil {
		return res, err
	}
	defer app.Close()

	cl, err := kgo.NewClient(kgo.SeedBrokers(app.Brokers()...), kgo.ConsumeTopics(topicRevenue, topicPaid),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.KeepControlRecords()) // so that the read position reaches the end offsets
	if err != nil {
		return res, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	compact := "compact"
	if err := firstErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "cleanup.policy", Value: &compact}}, topicCustomers)); err != nil {
		return res, fmt.Errorf("make %s compacted: %w", topicCustomers, err)
	}
	for _, t := range []string{topicRevenue, topicPaid} {
		if _, err := adm.CreateTopic(ctx, 1, -1, nil, t); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return res, err
		}
	}

	// The customers go first, and orders only once the table holds them:
	// a stream-table join looks up the table as it is when an order comes.
	if err := cl.ProduceSync(ctx, d.customerRecords()...).FirstErr(); err != nil {
		return res, err
	}
	if err := app.WaitIdle(ctx); err != nil {
		return res, err
	}
	if err := cl.ProduceSync(ctx, d.events...).FirstErr(); err != nil {
		return res, err
	}

	// The results are printed as they come. Once the application has
	// processed all the input (WaitIdle), the output is complete up to the
	// output topics' last stable offsets: the run ends when they are read.
	idle := make(chan error, 1)
	go func() { idle <- app.WaitIdle(ctx) }() // ends by the time Run has closed app
	var ends kadm.ListedOffsets               // nil until idle
	pos := map[string]map[int32]int64{}       // output topic -> partition -> next offset read
	windowed := stream.WindowedSerde(serde.String)
	for {
		pollCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		var perr error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && perr == nil {
				perr = fmt.Errorf("fetch %s[%d]: %w", t, p, err)
			}
		})
		if perr != nil {
			return res, perr
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if pos[r.Topic] == nil {
				pos[r.Topic] = map[int32]int64{}
			}
			pos[r.Topic][r.Partition] = r.Offset + 1
			if r.Attrs.IsControl() || r.Value == nil {
				return
			}
			switch r.Topic {
			case topicRevenue:
				k, err1 := windowed.Deserialize(r.Key)
				v, err2 := serde.JSON[Revenue]().Deserialize(r.Value)
				if err := errors.Join(err1, err2); err != nil {
					perr = err
					return
				}
				w := WindowRevenue{Category: k.Key, Start: k.Start, End: k.End, Revenue: v}
				res.Revenue = append(res.Revenue, w)
				fmt.Fprintf(out, "revenue  %s-%s  %-12s %10s  from %d order%s\n", clock(w.Start), clock(w.End), w.Category, dollars(w.Cents), w.Orders, plural(w.Orders))
			case topicPaid:
				p, err := serde.JSON[PaidOrder]().Deserialize(r.Value)
				if err != nil {
					perr = err
					return
				}
				res.Paid = append(res.Paid, p)
				fmt.Fprintf(out, "paid     %s  %-12s %10s  %-18s %-6s by %-13s %s after ordering\n", p.OrderID, p.Category, dollars(p.Cents),
					p.Customer, p.Region, p.Method, time.Duration(p.PaidAt-p.OrderedAt)*time.Millisecond)
			}
		})
		if perr != nil {
			return res, perr
		}
		if ends == nil {
			select {
			case err := <-idle:
				if err != nil {
					return res, err
				}
				if ends, err = adm.ListCommittedOffsets(ctx, topicRevenue, topicPaid); err == nil {
					err = ends.Error()
				}
				if err != nil {
					return res, fmt.Errorf("list the outputs' last stable offsets: %w", err)
				}
			default:
				continue
			}
		}
		read := true
		ends.Each(func(e kadm.ListedOffset) { read = read && pos[e.Topic][e.Partition] >= e.Offset })
		if read {
			return res, app.Close()
		}
	}
}

func firstErr(rs kadm.AlterConfigsResponses, err error) error {
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func clock(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04") }

func dollars(cents int64) string { return fmt.Sprintf("$%d.%02d", cents/100, cents%100) }
