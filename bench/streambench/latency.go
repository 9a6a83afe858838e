package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/internal/nexmark"
)

// The latency phase of the nexmark workload: each query under each
// guarantee, on each engine, runs as a new application while a producer
// writes the query's input events at a fixed rate — half of the events/s
// that engine reached on that query and guarantee in the throughput phase
// just before, or -nexmark-latency-rate — for a warm-up and then the
// measured span.
//
// What is measured. The producer sets each record's timestamp (Kafka's
// CreateTime) to the wall-clock time it hands the record to its client,
// and the generator's event time follows the wall clock at the same rate,
// so event time is produce time. Both engines give an output record the
// largest timestamp of the inputs it was computed from (a stateless
// query's input record; a join's two sides; an aggregation's latest
// update, as Kafka Streams does), so an output's timestamp is the produce
// time of the last input it depends on. A read_committed consumer of the
// output topic, in this process (one clock for both ends), notes when
// each output record becomes readable; its latency is that time minus
// its timestamp. For a stateless query that is the time an event takes to
// come out; for an aggregation or a join (q3, q4, q5, q7, q8) it is the
// time from the last input of a key's (or window's) update to that update
// being readable: what a user watching the output sees. Under
// exactly-once, output becomes readable at the transaction's commit, so
// the commit interval (100 ms) is part of the figure, as it is for a user.
// A record cache that absorbs several updates of a key emits the latest,
// measured from its latest input: the updates it absorbed are not
// outputs, and count for nothing.
//
// The carried timestamp was chosen over a wall-clock field in the values
// because both engines already carry timestamps through every operator,
// so the queries and their JSON stay as they are and one measure fits all
// of them, windows included (event time follows the wall clock, so
// windows close in real time, as they would in production).
//
// The outputs counted are those whose timestamp falls in the measured
// span (inputs of the warm-up excluded); after the producer stops the
// phase waits until the application's committed offsets cover its input
// and no output came for 20 commit intervals (at least 2 s), at most
// latencyDrainLimit.

// latencyDrainLimit bounds the wait for an application to catch up after
// the producer stopped; a run that needs longer is reported as not
// drained, with the outputs it made.
const latencyDrainLimit = 30 * time.Second

// latencyResult is one paced run.
type latencyResult struct {
	broker    string
	engine    string // "Runnel" or "Kafka Streams"
	query     string
	guarantee runnel.Guarantee
	rate      float64 // the input events/s asked for
	achieved  float64 // the input events/s produced over the measured span
	produced  int64   // input events produced in the measured span
	outputs   int     // output records measured
	p50, p99  time.Duration
	max       time.Duration
	drained   bool // the app caught up within latencyDrainLimit
}

const (
	engineRunnel   = "Runnel"
	engineKStreams = "Kafka Streams"
)

// latencyPhase runs every query under every guarantee at a fixed rate,
// on Runnel and (with -kstreams) Kafka Streams. perTopic is the
// throughput phase's input, whose mix of topics gives each query's share
// of the generated events.
func (b *bench) latencyPhase(classpath string, perTopic map[string]int64) error {
	var total int64
	for _, n := range perTopic {
		total += n
	}
	for _, name := range b.nexmarkQueries {
		q := nexmark.Queries[name]
		var input int64
		for _, t := range q.Inputs {
			input += perTopic[t]
		}
		share := float64(input) / float64(total)
		for _, g := range b.guarantees {
			engines := []string{engineRunnel}
			if b.kstreamsOn && slices.Contains(kstreamsQueries, name) {
				engines = append(engines, engineKStreams)
			}
			for _, engine := range engines {
				rate, err := b.latencyRateFor(engine, name, g)
				if err != nil {
					return err
				}
				r, err := b.runLatency(engine, classpath, q, g, rate, share)
				if err != nil {
					return err
				}
				b.latencies = append(b.latencies, r)
				b.prog.printf("latency %s %s %s on %s at %.0f events/s (%.0f produced): %d outputs, p50 %v, p99 %v, max %v (drained: %v)",
					engine, name, g, r.broker, r.rate, r.achieved, r.outputs, r.p50, r.p99, r.max, r.drained)
			}
		}
	}
	return nil
}

// latencyRateFor is the rate of the paced run: -nexmark-latency-rate, or
// half of what engine reached on query under g in the throughput phase on
// the same broker.
func (b *bench) latencyRateFor(engine, query string, g runnel.Guarantee) (float64, error) {
	if b.latencyRate > 0 {
		return b.latencyRate, nil
	}
	runs := b.nexmarks
	if engine == engineKStreams {
		runs = b.kstreams
	}
	i := slices.IndexFunc(runs, func(r nexmarkResult) bool {
		return r.broker == b.nexTarget.name && r.query == query && r.guarantee == g
	})
	if i < 0 {
		return 0, fmt.Errorf("latency %s %s %s: no throughput run to take half of; pass -nexmark-latency-rate", engine, query, g)
	}
	return max(1, runs[i].eventsPerSec()/2), nil
}

// runLatency runs q under g on engine while pace writes its input at rate
// input events per second, and measures its outputs' latency. share is
// the fraction of generated events in the topics q reads.
func (b *bench) runLatency(engine, classpath string, q nexmark.Query, g runnel.Guarantee, rate, share float64) (latencyResult, error) {
	res := latencyResult{broker: b.nexTarget.name, engine: engine, query: q.Name, guarantee: g, rate: rate}
	prefix := "nexmark-"
	if engine == engineKStreams {
		prefix = "kstreams-"
	}
	id := prefix + q.Name + "-" + guaranteeTag(g) + "-lat"
	q.Output = id + "-out"
	if err := b.createTopics(q.Output); err != nil {
		return res, err
	}
	// The throughput phase's events stay in the input topics: the app
	// starts at their end, as an operator would reset a new group's
	// offsets to the latest.
	if err := b.commitEnds(id, q.Inputs); err != nil {
		return res, err
	}
	w, err := b.watchOutput(q.Output)
	if err != nil {
		return res, err
	}
	defer w.stop()

	interval := nexmarkInterval
	if b.commitInterval > 0 {
		interval = b.commitInterval
	}
	var (
		stopApp func() error
		failed  <-chan struct{} // closed when the app stops by itself
	)
	switch engine {
	case engineRunnel:
		app, _, err := b.nexmarkApp(q, g, id)
		if err != nil {
			return res, err
		}
		if err := app.Start(b.ctx); err != nil {
			return res, fmt.Errorf("%s: start: %w", id, err)
		}
		stopApp, failed = app.Close, app.Done()
	default:
		k, err := b.startKStreams(classpath, q, g, id, q.Output)
		if err != nil {
			return res, err
		}
		done := make(chan struct{})
		go func() {
			err := <-k.exited
			k.exited <- err
			close(done)
		}()
		stopApp, failed = k.stop, done
	}
	var once sync.Once
	stop := func() (err error) {
		once.Do(func() { err = stopApp() })
		return err
	}
	defer stop()

	from, to, produced, err := b.pace(q, rate, share)
	if err != nil {
		return res, err
	}
	res.produced = produced
	res.achieved = float64(produced) / to.Sub(from).Seconds()

	quiet := max(20*interval, 2*time.Second)
	limit := time.Now().Add(latencyDrainLimit)
	for {
		_, covered, err := b.groupProgress(id, q.Inputs)
		if err == nil && covered && time.Since(w.last()) >= quiet {
			res.drained = true
			break
		}
		if time.Now().After(limit) {
			break
		}
		select {
		case <-time.After(20 * time.Millisecond): // polling the group's offsets: nothing to wait on
		case <-failed:
			return res, fmt.Errorf("%s: stopped during the latency run: %v", id, stop())
		case <-b.ctx.Done():
			return res, b.ctx.Err()
		}
	}
	if err := stop(); err != nil {
		return res, fmt.Errorf("%s: close: %w", id, err)
	}
	lat, werr := w.stop()
	if werr != nil {
		b.prog.printf("  %s: reading the output: %v", id, werr)
	}
	res.outputs, res.p50, res.p99, res.max = latencyStats(lat, from, to)
	return res, nil
}

// commitEnds commits, for group, the end offsets of topics: a new group
// then starts there.
func (b *bench) commitEnds(group string, topics []string) error {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	ends, err := b.adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("end offsets of %v: %w", topics, err)
	}
	resp, err := b.adm.CommitOffsets(ctx, group, ends.Offsets())
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("commit %s's offsets at the end of %v: %w", group, topics, err)
	}
	return nil
}

// pace writes the input events of q at rate per second for the warm-up
// and then the measured span, each with its produce time as timestamp,
// and returns the measured span and the input events produced in it.
// share is the fraction of generated events q reads: the generator's
// event time advances at rate/share events per second, so that the
// events' own times (in their values) follow the wall clock too.
func (b *bench) pace(q nexmark.Query, rate, share float64) (from, to time.Time, produced int64, err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.nexmarkAddr()), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxBufferedRecords(1_000_000))
	if err != nil {
		return from, to, 0, err
	}
	defer cl.Close()
	start := time.Now()
	gen, err := nexmark.NewGenerator(nexmark.Config{Seed: 1, FirstEventTime: start.UnixMilli(), EventsPerSecond: max(1, int64(rate/share))})
	if err != nil {
		return from, to, 0, err
	}
	// Kafka's timestamps are whole milliseconds: the span's ends and the
	// events' times are too, so that an event is in the span exactly when
	// its outputs are.
	from = time.UnixMilli(start.Add(b.latencyWarmup).UnixMilli())
	to = from.Add(b.latencyDuration.Truncate(time.Millisecond))
	var (
		mu   sync.Mutex
		perr error
	)
	onErr := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			perr = cmpOr(perr, err)
			mu.Unlock()
		}
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var next, sent int64 // the generator's next event; input events sent
	for now := start; now.Before(to); now = time.Now() {
		due := int64(now.Sub(start).Seconds() * rate)
		for sent < due {
			e, err := gen.Event(next).EncodeWith(b.nexSerdes)
			if err != nil {
				return from, to, produced, err
			}
			next++
			if !slices.Contains(q.Inputs, e.Topic) {
				continue
			}
			ts := time.UnixMilli(time.Now().UnixMilli())
			cl.Produce(b.ctx, &kgo.Record{Topic: e.Topic, Key: e.Key, Value: e.Value, Timestamp: ts}, onErr)
			sent++
			if !ts.Before(from) && ts.Before(to) {
				produced++
			}
		}
		select {
		case <-tick.C:
		case <-b.ctx.Done():
			return from, to, produced, b.ctx.Err()
		}
	}
	if err := cl.Flush(b.ctx); err != nil {
		return from, to, produced, err
	}
	mu.Lock()
	defer mu.Unlock()
	if perr != nil {
		return from, to, produced, fmt.Errorf("paced produce: %w", perr)
	}
	return from, to, produced, nil
}

// outputSample is one output record: its timestamp and its latency.
type outputSample struct {
	ts      time.Time
	latency time.Duration
}

// outputWatch reads a topic read_committed from its start, in a goroutine
// of its own, noting when each record becomes readable.
type outputWatch struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	samples []outputSample
	lastAt  time.Time // when the last record was read
	err     error
}

// watchOutput starts an outputWatch of topic (created empty just before).
func (b *bench) watchOutput(topic string) (*outputWatch, error) {
	parts := map[int32]kgo.Offset{}
	for p := range int32(partitions) {
		parts[p] = kgo.NewOffset().AtStart()
	}
	// FetchMaxWait is the Java consumer's default (fetch.max.wait.ms):
	// a fetch returns as soon as records are readable, or after it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.nexmarkAddr()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(b.ctx)
	w := &outputWatch{cancel: cancel, done: make(chan struct{}), lastAt: time.Now()}
	go func() {
		defer close(w.done)
		defer cl.Close()
		for {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			fs.EachError(func(t string, p int32, err error) { w.err = cmpOr(w.err, fmt.Errorf("read %s[%d]: %w", t, p, err)) })
			fs.EachRecord(func(r *kgo.Record) {
				w.samples = append(w.samples, outputSample{ts: r.Timestamp, latency: now.Sub(r.Timestamp)})
				w.lastAt = now
			})
			w.mu.Unlock()
		}
	}()
	return w, nil
}

// last is when the watch last read a record (its start if none).
func (w *outputWatch) last() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastAt
}

// stop ends the watch and returns its samples and the first fetch error
// it saw; it may be called again.
func (w *outputWatch) stop() ([]outputSample, error) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.samples, w.err
}

// latencyStats returns how many samples have a timestamp in [from, to),
// and their median, 99th percentile (nearest rank) and largest latency.
func latencyStats(samples []outputSample, from, to time.Time) (n int, p50, p99, largest time.Duration) {
	var lat []time.Duration
	for _, s := range samples {
		if !s.ts.Before(from) && s.ts.Before(to) {
			lat = append(lat, s.latency)
		}
	}
	if len(lat) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(lat)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(lat)))) - 1
		return lat[min(max(i, 0), len(lat)-1)]
	}
	return len(lat), rank(0.50), rank(0.99), lat[len(lat)-1]
}

// latencyTable: one row per paced run.
func (b *bench) latencyTable() *table {
	t := &table{header: []string{"broker", "query", "guarantee", "engine", "rate events/s", "produced events/s", "outputs", "p50 ms", "p99 ms", "max ms", "drained"}}
	msf := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	for _, r := range b.latencies {
		drained := "yes"
		if !r.drained {
			drained = "NO"
		}
		t.add(r.broker, r.query, guaranteeName(r.guarantee), r.engine, fmt.Sprintf("%.0f", r.rate), fmt.Sprintf("%.0f", r.achieved),
			fmt.Sprint(r.outputs), msf(r.p50), msf(r.p99), msf(r.max), drained)
	}
	return t
}

// latencySettings says how the latency phase measures.
func (b *bench) latencySettings() string {
	rate := "half of the events/s each engine reached on that query and guarantee in the throughput phase"
	if b.latencyRate > 0 {
		rate = fmt.Sprintf("%.0f input events/s (-nexmark-latency-rate)", b.latencyRate)
	}
	return fmt.Sprintf("latency: each query, guarantee and engine again as a new application starting at the input's end, while one franz-go producer writes the query's input events at %s, "+
		"each stamped with its produce time (event time = produce time), for %v of warm-up and %v measured; "+
		"an output record's latency is when a read_committed consumer in this process read it minus its timestamp (the produce time of the last input it depends on: both engines stamp an output with the largest timestamp of its inputs); "+
		"outputs: those with a timestamp in the measured span; drained: the app's committed offsets covered the input and no output came for 20 commit intervals (at least 2 s) within %v of the producer's end",
		rate, b.latencyWarmup, b.latencyDuration, latencyDrainLimit)
}
