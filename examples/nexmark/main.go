// Command nexmark runs one query of the Nexmark benchmark, written with
// the DSL, on generated events, and prints a summary of its results and
// its throughput.
//
//	go run ./examples/nexmark -query q5                                 # embedded broker
//	go run ./examples/nexmark -query q3 --bootstrap-server host:9092    # any Kafka-protocol cluster
//	go run ./examples/nexmark -query q1 -format avro                    # events as Avro, schemas in the embedded registry
//
// The generator (package internal/nexmark) makes -events events (people,
// auctions and bids, 1:3:46) with event time advancing -rate events per
// second, deterministic by -seed, and writes those the query reads as JSON
// (or, with -format avro, as Avro in Confluent's wire format, their
// schemas registered in the embedded broker's registry or -registry) to
// the topics nexmark-persons, nexmark-auctions and nexmark-bids (keyed by
// id). The query writes to nexmark-<query>. The program starts the
// application, produces the events, and waits until the application has
// processed them all and goes quiet (a commit after the last record,
// then nothing processed for 20 commit intervals, at least 3 s), then
// reads the output until it goes quiet for a second.
//
// The throughput printed is the input events divided by the time from the
// application's start to its last processed record; production runs
// concurrently with processing and is included.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/internal/nexmark"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

func main() {
	var cfg Config
	flag.StringVar(&cfg.Query, "query", "q5", "the query: "+strings.Join(nexmark.QueryNames, ", "))
	flag.Int64Var(&cfg.Events, "events", 200_000, "events to generate")
	flag.Int64Var(&cfg.Rate, "rate", 10_000, "events per second of event time")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed of the generator")
	servers := flag.String("bootstrap-server", "", "bootstrap servers (comma-separated); default: an embedded broker")
	flag.StringVar(&cfg.Format, "format", "json", "how the events are written: json or avro")
	flag.StringVar(&cfg.RegistryURL, "registry", "", "schema registry URL for -format avro; default: the embedded broker's (required with --bootstrap-server)")
	guarantee := flag.String("guarantee", runnel.AtLeastOnce.String(), "processing guarantee: at_least_once or exactly_once_v2")
	flag.DurationVar(&cfg.CommitInterval, "commit-interval", 100*time.Millisecond, "commit interval (corresponds to commit.interval.ms)")
	flag.IntVar(&cfg.Partitions, "partitions", 6, "partitions of the topics the program creates")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	if *servers != "" {
		cfg.Brokers = strings.Split(*servers, ",")
	}
	switch *guarantee {
	case runnel.AtLeastOnce.String():
		cfg.Guarantee = runnel.AtLeastOnce
	case runnel.ExactlyOnce.String():
		cfg.Guarantee = runnel.ExactlyOnce
	default:
		fmt.Fprintf(os.Stderr, "nexmark: unknown guarantee %q (want at_least_once or exactly_once_v2)\n", *guarantee)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "runnel-nexmark-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "nexmark:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	cfg.StateDir = dir
	res, err := Run(ctx, cfg, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nexmark:", err)
		os.Exit(1)
	}
	res.Print(os.Stdout)
}

// Config is what Run runs.
type Config struct {
	Query          string
	Events         int64
	Rate           int64 // events per second of event time
	Seed           uint64
	Brokers        []string // none: embedded
	Guarantee      runnel.Guarantee
	CommitInterval time.Duration
	Partitions     int
	StateDir       string
	Format         string // "json" (also when empty) or "avro"
	RegistryURL    string // with Format "avro": none for the embedded broker's registry
}

// Result is what a run did and found.
type Result struct {
	Query            nexmark.Query
	Guarantee        runnel.Guarantee
	Input            int64         // events the query reads
	RecordsProcessed int64         // the input and the repartitioned records
	Elapsed          time.Duration // from Start to the last record processed
	CPU              time.Duration // the process's CPU time until then
	Dropped          int64
	Records          []*kgo.Record     // the output, in the order read
	Latest           map[string][]byte // the latest value per output key
	// Show returns an output value as text: the query's JSON result, or
	// the bid of q0 and q1, which write bids in the events' format.
	Show func(value []byte) string
}

// Run runs cfg's query over generated events. It returns when the
// application has processed every event and gone quiet and the output
// has gone quiet for a second, or, if done is set, as soon as done says
// the output read so far is complete.
func Run(ctx context.Context, cfg Config, done func(*Result) bool) (*Result, error) {
	q, err := nexmark.Lookup(cfg.Query)
	if err != nil {
		return nil, err
	}
	if cfg.Events <= 0 || cfg.Partitions <= 0 {
		return nil, fmt.Errorf("nexmark: events (%d) and partitions (%d) must be positive", cfg.Events, cfg.Partitions)
	}
	gen, err := nexmark.NewGenerator(nexmark.Config{Seed: cfg.Seed, EventsPerSecond: cfg.Rate})
	if err != nil {
		return nil, err
	}
	// The serdes are made before the app, whose embedded registry is
	// known once it started: LazyRegistry connects on the first use.
	var app *runnel.App
	serdes, err := formatSerdes(cfg, func() string { return app.RegistryURL() })
	if err != nil {
		return nil, err
	}
	topo, err := q.BuildWith(serdes)
	if err != nil {
		return nil, err
	}
	opts := []runnel.AppOption{runnel.ApplicationID("nexmark-" + q.Name), runnel.StateDir(cfg.StateDir),
		runnel.CreateSourceTopics(cfg.Partitions), runnel.CreateSinkTopics(cfg.Partitions),
		runnel.ProcessingGuarantee(cfg.Guarantee)}
	if cfg.CommitInterval > 0 {
		opts = append(opts, runnel.CommitInterval(cfg.CommitInterval))
	}
	if len(cfg.Brokers) > 0 {
		opts = append(opts, runnel.Brokers(cfg.Brokers...))
	}
	if cfg.RegistryURL != "" {
		opts = append(opts, runnel.SchemaRegistryURL(cfg.RegistryURL))
	}
	app, err = runnel.NewApp(topo, opts...)
	if err != nil {
		return nil, err
	}
	res := &Result{Query: q, Guarantee: cfg.Guarantee, Latest: map[string][]byte{}, Show: showValue(q, serdes)}
	cpu0 := cpuTime()
	start := time.Now()
	if err := app.Start(ctx); err != nil {
		return nil, err
	}
	defer app.Close()

	cl, err := kgo.NewClient(kgo.SeedBrokers(app.Brokers()...), kgo.ConsumeTopics(q.Output),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.ProducerLinger(time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	produced, err := produce(ctx, cl, gen, serdes, cfg.Events, q.Inputs)
	if err != nil {
		return nil, err
	}
	res.Input = produced

	// Processing is over when every event is processed, a commit has
	// followed the last record (the caches flushed at a commit send
	// records through repartition topics, processed after it), and
	// nothing is processed for 20 commit intervals (at least 3 s: on a
	// loaded machine a repartition topic's records can come a second
	// after the commit that made them visible); an idle exactly-once app
	// makes no commits to count.
	quietFor := max(20*cfg.CommitInterval, 3*time.Second)
	var (
		lastProcessed   int64 = -1
		lastChange      time.Time
		commitsAtChange int64
		lastOutput      = time.Now()
		quiet           bool
	)
	for {
		m := app.Metrics()
		now := time.Now()
		if m.RecordsProcessed != lastProcessed {
			lastProcessed, lastChange, commitsAtChange = m.RecordsProcessed, now, m.Commits
			res.Elapsed, res.CPU = now.Sub(start), cpuTime()-cpu0
		}
		res.RecordsProcessed, res.Dropped = m.RecordsProcessed, m.DroppedRecords
		quiet = m.RecordsProcessed >= q.MinProcessed(produced) && m.Commits > commitsAtChange && now.Sub(lastChange) >= quietFor
		if done != nil && done(res) || done == nil && quiet && now.Sub(lastOutput) >= time.Second {
			return res, app.Close()
		}
		pollCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%d of %d events processed, %d output records)", ctx.Err(), m.RecordsProcessed, produced, len(res.Records))
		}
		for _, fe := range fetches.Errors() {
			if fe.Err != context.DeadlineExceeded {
				return nil, fe.Err
			}
		}
		fetches.EachRecord(func(r *kgo.Record) {
			res.Records = append(res.Records, r)
			if r.Value == nil {
				delete(res.Latest, string(r.Key))
			} else {
				res.Latest[string(r.Key)] = r.Value
			}
			lastOutput = time.Now()
		})
		select {
		case <-app.Done():
			return nil, fmt.Errorf("application stopped: %w", app.Err())
		default:
		}
	}
}

// produce writes the events the query reads to their topics and returns
// how many.
func produce(ctx context.Context, cl *kgo.Client, gen *nexmark.Generator, serdes nexmark.Serdes, events int64, topics []string) (int64, error) {
	var n int64
	errc := make(chan error, 1)
	for i := range events {
		e := gen.Event(i)
		if !slices.Contains(topics, e.Topic()) {
			continue
		}
		r, err := e.EncodeWith(serdes)
		if err != nil {
			return n, err
		}
		n++
		cl.Produce(ctx, &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Timestamp: time.UnixMilli(r.Timestamp)},
			func(_ *kgo.Record, err error) {
				if err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			})
	}
	if err := cl.Flush(ctx); err != nil {
		return n, err
	}
	select {
	case err := <-errc:
		return n, fmt.Errorf("produce: %w", err)
	default:
	}
	return n, nil
}

// Print writes the summary: throughput, output size, and a few results.
func (r *Result) Print(w io.Writer) {
	fmt.Fprintf(w, "%s (%s) under %s\n", r.Query.Name, r.Query.Doc, r.Guarantee)
	fmt.Fprintf(w, "  %d input events, %d records processed (repartitions included), %d dropped as late\n", r.Input, r.RecordsProcessed, r.Dropped)
	fmt.Fprintf(w, "  %.0f events/s (all processed %v after start), %.1f µs of CPU per event (broker included)\n",
		float64(r.Input)/r.Elapsed.Seconds(), r.Elapsed.Round(time.Millisecond), float64(r.CPU.Microseconds())/float64(r.Input))
	fmt.Fprintf(w, "  %d output records, %d distinct keys; the last few:\n", len(r.Records), len(r.Latest))
	for _, rec := range r.Records[max(0, len(r.Records)-5):] {
		fmt.Fprintf(w, "    %s  %s\n", keyString(rec.Key), r.Show(rec.Value))
	}
}

// keyString prints an output key: an id or window start (8 bytes) as a
// number, a JSON key as it is.
func keyString(k []byte) string {
	if len(k) == 8 {
		return strconv.FormatInt(int64(binary.BigEndian.Uint64(k)), 10)
	}
	return string(k)
}

// formatSerdes returns the serdes of cfg.Format; registryURL gives the
// embedded broker's registry once the app started.
func formatSerdes(cfg Config, registryURL func() string) (nexmark.Serdes, error) {
	switch cfg.Format {
	case "", "json":
		return nexmark.JSON, nil
	case "avro":
		if len(cfg.Brokers) > 0 && cfg.RegistryURL == "" {
			return nexmark.Serdes{}, errors.New("-format avro with --bootstrap-server needs -registry")
		}
		return nexmark.AvroSerdes(serde.LazyRegistry(func() (*sr.Client, error) {
			u := cfg.RegistryURL
			if u == "" {
				u = registryURL()
			}
			return sr.NewClient(sr.URLs(u))
		}))
	}
	return nexmark.Serdes{}, fmt.Errorf("unknown format %q (want json or avro)", cfg.Format)
}

// showValue returns how Print shows q's output values: q0 and q1 write
// bids with the events' serde, decoded here to JSON; the other queries
// write JSON results.
func showValue(q nexmark.Query, s nexmark.Serdes) func([]byte) string {
	if q.Name != "q0" && q.Name != "q1" {
		return func(v []byte) string { return string(v) }
	}
	return func(v []byte) string {
		b, err := s.Bid.Deserialize(v)
		if err != nil {
			return fmt.Sprintf("(%d bytes that are no bid: %v)", len(v), err)
		}
		j, _ := nexmark.JSON.Bid.Serialize(b)
		return string(j)
	}
}
