package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/internal/nexmark"
	"github.com/twmb/franz-go/pkg/kgo"
)

// nexmarkResult is one run of a Nexmark query.
type nexmarkResult struct {
	broker    string // the broker it ran on: "runnel" (in this process) or "kafka"
	query     string
	guarantee runnel.Guarantee
	input     int64 // events in the topics the query reads
	processed int64 // records processed, repartitioned ones included
	dropped   int64
	elapsed   time.Duration // from Start to the last record processed
	cpu       time.Duration // this process's CPU time over the same span
	allocated uint64
	// rss is the largest resident set sampled during the run: this
	// process's (broker and app) for Runnel, the JVM's for Kafka Streams.
	rss    uint64
	output string // the topic the run wrote its results to
	// For a Kafka Streams run: whether its results are Runnel's, and how
	// they compare (compare.go).
	same  bool
	check string
}

func (r nexmarkResult) eventsPerSec() float64 { return float64(r.input) / r.elapsed.Seconds() }
func (r nexmarkResult) cpuPerEvent() float64 {
	return float64(r.cpu.Microseconds()) / float64(r.input)
}

// nexmarkInterval is the commit interval of the Nexmark apps under both
// guarantees unless -commit-interval is set: the record caches of q3, q4,
// q5 and q8 forward their updates (through repartition topics) at a
// commit, so with at-least-once's default of 30 s a run would mostly wait.
const nexmarkInterval = 100 * time.Millisecond

// nexmarkBench runs the Nexmark queries on each broker of
// -nexmark-broker in turn (nexmarkOn).
func (b *bench) nexmarkBench() error {
	b.nexmarkLoad[0] = loadAverage()
	defer func() { b.nexmarkLoad[1] = loadAverage() }()
	var (
		classpath string
		err       error
	)
	if b.kstreamsOn {
		if classpath, err = b.buildKStreams(); err != nil {
			return err
		}
	}
	for _, name := range b.nexmarkBrokers {
		if err := b.onBroker(name, func() error { return b.nexmarkOn(classpath) }); err != nil {
			return err
		}
	}
	return nil
}

// nexmarkOn generates b.nexmarkEvents events, produces them to the three
// Nexmark topics once, then runs each chosen query under each guarantee
// as a new application reading them from the start (the throughput
// phase); then, unless -nexmark-latency-duration is 0, each again at a
// fixed rate (the latency phase, latency.go).
func (b *bench) nexmarkOn(classpath string) error {
	gen, err := nexmark.NewGenerator(nexmark.Config{Seed: 1, EventsPerSecond: b.nexmarkRate})
	if err != nil {
		return err
	}
	if err := b.createTopics(nexmark.TopicPersons, nexmark.TopicAuctions, nexmark.TopicBids); err != nil {
		return err
	}
	perTopic, err := b.produceNexmark(gen)
	if err != nil {
		return err
	}
	on := b.nexTarget.name
	for _, name := range b.nexmarkQueries {
		q := nexmark.Queries[name]
		var input int64
		for _, t := range q.Inputs {
			input += perTopic[t]
		}
		for _, g := range b.guarantees {
			var r nexmarkResult
			err := b.profiled(b.nexmarkRunName(name, g), func() (err error) {
				r, err = b.runNexmark(q, g, input)
				return err
			})
			if err != nil {
				return err
			}
			b.nexmarks = append(b.nexmarks, r)
			b.prog.printf("nexmark %s %s on %s: %.0f events/s (%d events, %d records processed in %v, %.1f µs of CPU per event, %d dropped as late)",
				name, g, on, r.eventsPerSec(), r.input, r.processed, r.elapsed.Round(time.Millisecond), r.cpuPerEvent(), r.dropped)
			if b.kstreamsOn && slices.Contains(kstreamsQueries, name) {
				k, err := b.runKStreams(classpath, q, g, input)
				if err != nil {
					return err
				}
				b.prog.printf("kstreams %s %s on %s: %.0f events/s (%v, %.1f µs of CPU per event, JVM and broker)",
					name, g, on, k.eventsPerSec(), k.elapsed.Round(time.Millisecond), k.cpuPerEvent())
				if k.same, k.check, err = b.checkResults(name, r.output, k.output); err != nil {
					return err
				}
				b.kstreams = append(b.kstreams, k)
				b.prog.printf("kstreams %s %s on %s: results the same as Runnel's: %v (%s)", name, g, on, k.same, k.check)
			}
		}
	}
	if b.latencyDuration <= 0 {
		return nil
	}
	// After every throughput run, so that the events the latency phase
	// adds to the input topics are read by no throughput run.
	return b.latencyPhase(classpath, perTopic)
}

// produceNexmark writes the events to their topics, as produce does, and
// returns how many went to each topic.
func (b *bench) produceNexmark(gen *nexmark.Generator) (map[string]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.nexmarkAddr()), kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	start := time.Now()
	var (
		mu   sync.Mutex
		perr error
	)
	perTopic := map[string]int64{}
	for i := range b.nexmarkEvents {
		r, err := gen.Event(i).EncodeWith(b.nexSerdes)
		if err != nil {
			return nil, err
		}
		perTopic[r.Topic]++
		cl.Produce(b.ctx, &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Timestamp: time.UnixMilli(r.Timestamp)},
			func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					perr = cmpOr(perr, err)
					mu.Unlock()
				}
			})
	}
	if err := cl.Flush(b.ctx); err != nil {
		return nil, err
	}
	if perr != nil {
		return nil, fmt.Errorf("produce nexmark events: %w", perr)
	}
	el := time.Since(start)
	b.prog.printf("produced %d Nexmark events (%v) in %v (%.0f events/s)", b.nexmarkEvents, perTopic, el.Round(time.Millisecond), float64(b.nexmarkEvents)/el.Seconds())
	return perTopic, nil
}

// runNexmark runs q under g until it has processed its input events (and
// their repartitioned copies, for q7 and q8), made a commit after the
// last record, and processed nothing more for 20 commit intervals (at
// least 3 s): the records a cache
// flush sends through a repartition topic at a commit are processed after
// it, so the count of records to process is not known in advance. The
// time measured ends at the last record processed.
func (b *bench) runNexmark(q nexmark.Query, g runnel.Guarantee, input int64) (nexmarkResult, error) {
	res := nexmarkResult{query: q.Name, guarantee: g, input: input, broker: b.nexTarget.name}
	id := "nexmark-" + q.Name + "-" + guaranteeTag(g)
	// Each run writes a topic of its own, which the Kafka Streams run's
	// output is compared with.
	q.Output = id + "-out"
	res.output = q.Output
	if err := b.createTopics(q.Output); err != nil {
		return res, err
	}
	app, interval, err := b.nexmarkApp(q, g, id)
	if err != nil {
		return res, err
	}
	in := app.Options()
	b.prog.printf("nexmark %s %s: running %s", q.Name, g, in.String())
	// Two heap profiles bracket the run: what it allocated is the
	// difference (go tool pprof -sample_index=alloc_space -base START END).
	name := b.nexmarkRunName(q.Name, g)
	if err := b.writeHeapProfile(name + "-start"); err != nil {
		return res, err
	}
	// Each run starts from a collected heap, whether or not -memprofile
	// collects for its profile, so the runs with and without profiles
	// start alike; the garbage of the produce phase or the previous run
	// is not collected during this one. The freed memory goes back to the
	// OS, so that the resident set sampled is this run's.
	debug.FreeOSMemory()
	cpu0, alloc0 := b.nexmarkCPU(), heapStats().allocated
	start := time.Now()
	if err := app.Start(b.ctx); err != nil {
		return res, fmt.Errorf("%s: start: %w", id, err)
	}
	// An idle exactly-once app makes no commits: quiet is counted in
	// time, after a commit has followed the last record.
	// Under load the records of a repartition topic may come more than a
	// second after the commit that made them visible (seen under
	// exactly-once on a machine at load 15): 3 s or 20 intervals.
	quiet := max(20*interval, 3*time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	var (
		lastProcessed   int64 = -1
		lastChange            = start
		commitsAtChange int64
		lastReport      = start
		lastRSS         time.Time
	)
	for {
		m := app.Metrics()
		now := time.Now()
		if now.Sub(lastRSS) >= 100*time.Millisecond {
			lastRSS = now
			if rss, err := procRSS(os.Getpid()); err == nil {
				res.rss = max(res.rss, rss)
			}
		}
		if m.RecordsProcessed != lastProcessed {
			lastProcessed, lastChange, commitsAtChange = m.RecordsProcessed, now, m.Commits
			res.elapsed, res.cpu, res.allocated = now.Sub(start), b.nexmarkCPU()-cpu0, heapStats().allocated-alloc0
		}
		if m.RecordsProcessed >= q.MinProcessed(input) && m.Commits > commitsAtChange && now.Sub(lastChange) >= quiet {
			res.processed, res.dropped = m.RecordsProcessed, m.DroppedRecords
			if err := b.writeHeapProfile(name); err != nil {
				app.Close()
				return res, err
			}
			break
		}
		if b.stallDump > 0 && now.Sub(lastChange) >= b.stallDump && m.RecordsProcessed < input {
			app.Close()
			return res, fmt.Errorf("%s: stalled: %d of %d events processed, none for %v", id, m.RecordsProcessed, input, b.stallDump)
		}
		if now.Sub(lastReport) >= 5*time.Second {
			lastReport = now
			b.prog.printf("  %d records processed (%d input events)", m.RecordsProcessed, input)
		}
		select {
		case <-tick.C:
		case <-app.Done():
			return res, fmt.Errorf("%s: processing stopped: %w", id, app.Close())
		case <-b.ctx.Done():
			app.Close()
			return res, b.ctx.Err()
		}
	}
	if err := app.Close(); err != nil {
		return res, fmt.Errorf("%s: close: %w", id, err)
	}
	return res, nil
}

// nexmarkApp makes the Runnel application of q under g, id its
// application id, on the broker the nexmark workload uses; it returns
// the commit interval too.
func (b *bench) nexmarkApp(q nexmark.Query, g runnel.Guarantee, id string) (*runnel.App, time.Duration, error) {
	topo, err := q.BuildWith(b.nexSerdes)
	if err != nil {
		return nil, 0, err
	}
	interval := nexmarkInterval
	if b.commitInterval > 0 {
		interval = b.commitInterval
	}
	opts := []runnel.AppOption{runnel.ApplicationID(id), runnel.Brokers(b.nexmarkAddr()),
		runnel.StateDir(b.nexmarkStateDir("state")), runnel.ProcessingGuarantee(g), runnel.Logger(b.logger()),
		runnel.CommitInterval(interval)}
	if b.workers > 1 {
		opts = append(opts, runnel.NumWorkers(b.workers))
	}
	if b.nexmarkCache >= 0 {
		opts = append(opts, runnel.CacheBytes(b.nexmarkCache))
	}
	if b.nexmarkDrift != nil {
		opts = append(opts, runnel.MaxSourceDrift(*b.nexmarkDrift))
	}
	app, err := runnel.NewApp(topo, opts...)
	return app, interval, err
}

// guaranteeTag is g's short name in application ids.
func guaranteeTag(g runnel.Guarantee) string {
	if g == runnel.ExactlyOnce {
		return "eos"
	}
	return "alo"
}

// nexmarkTable: one row per query and guarantee.
func (b *bench) nexmarkTable() *table {
	t := &table{header: []string{"broker", "query", "guarantee", "input events", "records processed", "dropped late", "all processed ms", "events/s", "CPU µs/event", "alloc B/event", "RSS MB"}}
	for _, r := range b.nexmarks {
		t.add(r.broker, r.query, guaranteeName(r.guarantee), fmt.Sprint(r.input), fmt.Sprint(r.processed), fmt.Sprint(r.dropped), ms(r.elapsed),
			fmt.Sprintf("%.0f", r.eventsPerSec()), fmt.Sprintf("%.1f", r.cpuPerEvent()), fmt.Sprintf("%.0f", float64(r.allocated)/float64(r.input)),
			fmt.Sprintf("%.0f", float64(r.rss)/1e6))
	}
	return t
}

// checkResults reads Runnel's and Kafka Streams' outputs of query and
// compares them (compare.go).
func (b *bench) checkResults(query, runnelTopic, kstreamsTopic string) (same bool, how string, err error) {
	r, err := b.readOutput(query, runnelTopic)
	if err != nil {
		return false, "", err
	}
	k, err := b.readOutput(query, kstreamsTopic)
	if err != nil {
		return false, "", err
	}
	same, how = compareOutputs(r, k)
	return same, how, nil
}

// loadAverage is the machine's 1-minute load average, -1 if unknown.
func loadAverage() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// plotTitle says what the plot shows and how loaded the machine was.
func (b *bench) plotTitle() string {
	who := "Runnel"
	if len(b.kstreams) > 0 {
		who = "Runnel vs Kafka Streams 4.3.1"
	}
	on := "Runnel's broker"
	if b.nexmarkBrokers[0] == "kafka" {
		on = "Apache Kafka 4.3.1"
	}
	return fmt.Sprintf("Nexmark, %s events, %s on %s, %d cores, load average %.1f to %.1f",
		rateLabel(float64(b.nexmarkEvents)), who, on, runtime.NumCPU(), b.nexmarkLoad[0], b.nexmarkLoad[1])
}

// procRSS is a process's resident set size, from /proc.
func procRSS(pid int) (uint64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// nexmarkSettings describes the Nexmark runs.
func (b *bench) nexmarkSettings() string {
	interval := nexmarkInterval
	if b.commitInterval > 0 {
		interval = b.commitInterval
	}
	return fmt.Sprintf("nexmark: %d events (persons:auctions:bids 1:3:46, seed 1, %d events per second of event time) as %s in 3 topics of %d partitions; queries %s; commit interval %v under both guarantees; "+
		"input events: those in the topics the query reads; all processed: Start to the last record processed (input and repartitions), found as every input event processed (for q7 and q8 its repartitioned copy too), a commit after the last record, and nothing processed for 20 commit intervals (at least 3 s)",
		b.nexmarkEvents, b.nexmarkRate, b.nexSerdes.Bid, partitions, strings.Join(b.nexmarkQueries, ","), interval) + b.nexmarkBrokersLine()
}

// nexmarkBrokersLine says which brokers the nexmark runs used, when Kafka
// was one, and what the CPU and RSS figures count then.
func (b *bench) nexmarkBrokersLine() string {
	if !slices.Contains(b.nexmarkBrokers, "kafka") {
		return ""
	}
	return "; broker runnel: Runnel's broker in this process; broker kafka: Apache Kafka 4.3.1, one KRaft node (broker and controller) in its own JVM (-Xmx1G, Kafka's defaults but one partition for the offsets and transaction topics), " +
		"the input produced to it the same way, every app connecting to it as an external broker; on kafka, CPU counts Kafka's JVM too (plus this process's for Runnel's app, the JVM's for Kafka Streams), and Runnel's RSS is this process's, app and idle in-process broker"
}

func chooseQueries(list string) ([]string, error) {
	var out []string
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if _, err := nexmark.Lookup(name); err != nil {
			return nil, fmt.Errorf("-nexmark-queries: %w", err)
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-nexmark-queries: none named")
	}
	return out, nil
}
