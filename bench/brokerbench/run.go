package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// run is one benchmark run: its settings and what it has measured so far.
type run struct {
	s         settings
	workloads []workload
	rate      float64 // -rate; 0 means half of the first broker's peak
	prog      *progress
	waitIdle  time.Duration // -wait-idle
	settle    time.Duration // -settle
	// dropCaches empties the page cache before each broker
	// (-drop-caches).
	dropCaches bool
	quick      bool // -quick: the connection-heavy workload shrinks too

	peak    map[string]peakRate // workload name -> peak of the first broker measured (Runnel when included)
	results []*brokerResult     // one per broker, in the order measured
	rounds  int                 // rounds started so far
}

// brokerResult is everything measured on one broker, in every round.
type brokerResult struct {
	name       string
	durability string
	skipped    string // why the broker was not measured, if it was not
	err        error  // the failure that stopped its measurement, if any
	byWorkload map[string][]*workloadResult
}

// resultFor returns p's result, adding it on p's first round.
func (r *run) resultFor(p peer) *brokerResult {
	for _, b := range r.results {
		if b.name == p.name() {
			return b
		}
	}
	b := &brokerResult{name: p.name(), durability: p.durability(), byWorkload: map[string][]*workloadResult{}}
	r.results = append(r.results, b)
	return b
}

// peakRate is the full-speed produce rate that sets the latency phase's
// rate, and the broker it was measured on.
type peakRate struct {
	recordsPerSec float64
	broker        string
}

// workloadResult is one round of one workload on one broker. The
// single-client workloads fill produce, consume and paced; the others
// their own result.
type workloadResult struct {
	produce, consume throughput
	paced            pacedResult
	clients          *clientsResult // the many-clients workload
	conns            *connsResult   // the connection-heavy workload
}

// measure starts p, runs every workload against it, and stops it.
func (r *run) measure(ctx context.Context, p peer, dir string, keep bool) {
	res := r.resultFor(p)
	if res.skipped != "" || res.err != nil {
		return // not again in a later round
	}

	if k, ok := p.(*kafkaPeer); ok {
		if why := k.resolveHome(ctx); why != "" {
			res.skipped = why
			r.prog.printf("kafka: SKIPPED: %s", why)
			return
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.err = err
		return
	}
	if !keep {
		defer os.RemoveAll(dir)
	}

	r.prog.prefix = ""
	// Write back what earlier brokers left dirty in the page cache (Kafka
	// acknowledges without fsync, and the data dirs just removed may
	// still be flushing), so that this broker's writes do not pay for it.
	syscall.Sync()
	if r.dropCaches {
		if err := dropPageCache(); err != nil {
			res.err = err
			r.prog.printf("%s: %v", p.name(), err)
			return
		}
	}
	var load float64
	if r.waitIdle > 0 {
		load = waitIdle(r.waitIdle, 0.15, r.prog)
	} else {
		load, _ = machineLoad(time.Second)
	}
	r.prog.printf("%s: starting, round %d (machine load before start: %.2f cores)", p.name(), r.rounds, load)
	t0 := time.Now()
	proc, err := p.start(ctx, dir)
	if err != nil {
		res.err = fmt.Errorf("start: %w", err)
		r.prog.printf("%s: FAILED to start: %v", p.name(), err)
		return
	}
	r.prog.printf("%s: listening on %s (pid %v, started in %v)", p.name(), strings.Join(proc.seeds(), ","), proc.pids(), time.Since(t0).Round(time.Millisecond))
	defer func() {
		if err := proc.stop(60 * time.Second); err != nil {
			r.prog.printf("%s: stop: %v", p.name(), err)
		}
	}()
	ctx, cancel := proc.watch(ctx)
	defer cancel()

	r.prog.prefix = p.name() + ": "
	defer func() { r.prog.prefix = "" }()
	if err := r.warmUp(ctx, proc); err != nil {
		res.err = fmt.Errorf("warm-up: %w", exitCause(proc, err))
		r.prog.printf("FAILED: %v (log: %s)", res.err, proc.logs())
		return
	}
	if err := r.settleBroker(ctx); err != nil {
		res.err = exitCause(proc, err)
		r.prog.printf("FAILED: %v", res.err)
		return
	}
	for _, w := range r.workloads {
		if _, ok := p.(produceOnly); ok && w.kind == manyClients {
			r.prog.printf("%s: skipped (it reads what it writes, and %s stores nothing)", w.name, p.name())
			continue
		}
		wr, err := r.runWorkload(ctx, p, proc, w)
		if err != nil {
			res.err = fmt.Errorf("%s: %w", w.name, exitCause(proc, err))
			r.prog.printf("FAILED: %v (log: %s)", res.err, proc.logs())
			return
		}
		res.byWorkload[w.name] = append(res.byWorkload[w.name], wr)
	}
}

// exitCause adds to err, a phase's failure, that a broker process exited
// (cluster.watch), when one did or does within a second: the phase itself
// sees a cancelled context or a closed connection.
func exitCause(proc *cluster, err error) error {
	var already *errExited
	if gone := proc.exitedWithin(time.Second); gone != nil && !errors.As(err, &already) {
		return fmt.Errorf("%w: %w", gone, err)
	}
	return err
}

// settleBroker leaves the broker idle for -settle, as a server is between
// its start and its load; the peers are treated alike.
func (r *run) settleBroker(ctx context.Context) error {
	if r.settle <= 0 {
		return nil
	}
	r.prog.printf("settling: idle for %v", r.settle)
	t := time.NewTimer(r.settle)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// warmUp produces a few unmeasured records so that every broker, the JVM
// above all, is past its start-up costs before the first measured phase.
func (r *run) warmUp(ctx context.Context, proc *cluster) error {
	const topic = "bench-warmup"
	if err := createTopic(ctx, proc, topic, r.s); err != nil {
		return err
	}
	w := workload{name: "warmup", size: 100, records: min(500_000, r.workloads[0].records/4)}
	s := r.s
	s.duration = 0
	r.prog.printf("warm-up: %s records of %d B", count(w.records), w.size)
	_, err := produceMax(ctx, proc, topic, w, s, r.prog)
	return err
}

func (r *run) runWorkload(ctx context.Context, p peer, proc *cluster, w workload) (*workloadResult, error) {
	_, skipConsume := p.(produceOnly)
	switch w.kind {
	case manyClients:
		return r.runClients(ctx, p, proc, w)
	case manyConns:
		return r.runConns(ctx, proc, w)
	}
	var wr workloadResult
	topic := "bench-" + w.name
	if err := createTopic(ctx, proc, topic, r.s); err != nil {
		return nil, err
	}
	if r.s.duration > 0 {
		r.prog.printf("%s produce: %v at full speed", w.name, r.s.duration)
	} else {
		r.prog.printf("%s produce: %s records at full speed", w.name, count(w.records))
	}
	var err error
	if wr.produce, err = produceMax(ctx, proc, topic, w, r.s, r.prog); err != nil {
		return nil, err
	}
	if wr.produce.writeback, err = writeback(); err != nil {
		return nil, err
	}
	r.prog.printf("%s produce: %s rec/s, %.1f MB/s, broker CPU %.2f s/GB%s, client %.2f s/GB (system %.2f; kernel threads %.2f; writeback after %.2f)", w.name,
		count(int64(wr.produce.recordsPerSec())), wr.produce.mbPerSec(), wr.produce.cpuPerGB(), perProcess(wr.produce), wr.produce.clientPerGB(),
		wr.produce.sysPerGB(), wr.produce.kthreadsPerGB(), wr.produce.writebackPerGB())

	if !skipConsume {
		r.prog.printf("%s consume: %s records from the start", w.name, count(wr.produce.records))
		if wr.consume, err = consumeAll(ctx, proc, topic, wr.produce.records, r.prog); err != nil {
			return nil, err
		}
		r.prog.printf("%s consume: %s rec/s, %.1f MB/s, broker CPU %.2f s/GB%s, client %.2f s/GB", w.name,
			count(int64(wr.consume.recordsPerSec())), wr.consume.mbPerSec(), wr.consume.cpuPerGB(), perProcess(wr.consume), wr.consume.clientPerGB())
	}

	rate := r.rate
	if rate == 0 {
		if _, ok := r.peak[w.name]; !ok {
			r.peak[w.name] = peakRate{wr.produce.recordsPerSec(), p.name()}
		}
		rate = r.peak[w.name].recordsPerSec / 2
	}
	latTopic := "bench-latency-" + w.name
	if err := createTopic(ctx, proc, latTopic, r.s); err != nil {
		return nil, err
	}
	r.prog.printf("%s latency: %s rec/s for %v (+%v warm-up)", w.name, count(int64(rate)), r.s.paced, r.s.warmup)
	if wr.paced, err = producePaced(ctx, proc, latTopic, w, rate, r.s); err != nil {
		return nil, err
	}
	r.prog.printf("%s latency: p50 %v, p99 %v, max %v", w.name, ms(wr.paced.lat.p50), ms(wr.paced.lat.p99), ms(wr.paced.lat.max))
	return &wr, nil
}

// perProcess lists a cluster's CPU s/GB per broker process, as
// " (per broker: 0.41 0.40 0.38)"; "" for a single broker.
func perProcess(t throughput) string {
	if len(t.cpuPer) < 2 {
		return ""
	}
	s := make([]string, len(t.cpuPer))
	for i := range t.cpuPer {
		s[i] = fmt.Sprintf("%.2f", t.cpuPerGBOf(i))
	}
	return " (per broker: " + strings.Join(s, " ") + ")"
}

// ms formats d in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }
