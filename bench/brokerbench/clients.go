package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The many-clients workload: a broker serving several applications at once.
const (
	stallTimeout      = 60 * time.Second // no consumer progress for this long fails the phase
	clientsPartitions = 24               // partitions of its topic
	clientsProducers  = 4                // producers, each its own client
	clientsGroups     = 2                // consumer groups, each reading the whole topic (fan-out)
	clientsPerGroup   = 2                // consumers per group, each its own client
)

// clientsResult is one round of the many-clients workload on one broker.
type clientsResult struct {
	// produce is the 4 producers on their own (the consumers paused):
	// w.records in all, for CPU per GB in.
	produce throughput
	// consume is both groups reading those records from the start, the
	// producers idle: records and bytes count each group's copy, for CPU
	// per GB out.
	consume throughput
	// in and out are the fan-out phase: the 4 producers at full speed
	// while both groups read what they write. in runs to the last
	// acknowledgement, out to the moment both groups have read every
	// record; cpu is the broker's over the whole phase, per GB of in and
	// out together.
	in, out throughput
	cpu     time.Duration
	// clientCPU is the benchmark process's CPU over the fan-out phase:
	// the eight clients'.
	clientCPU time.Duration
	// paced is the 4 producers at a fixed total rate, the groups still
	// reading.
	paced pacedResult
}

// aggregate is the fan-out phase's records/s in and out together.
func (c *clientsResult) aggregate() float64 { return c.in.recordsPerSec() + c.out.recordsPerSec() }

// cpuPerGBMoved is the fan-out phase's broker CPU seconds per 10^9 value
// bytes written and read.
func (c *clientsResult) cpuPerGBMoved() float64 {
	return c.cpu.Seconds() / (float64(c.in.bytes+c.out.bytes) / 1e9)
}

// clientPerGBMoved is the fan-out phase's benchmark process CPU seconds
// (the clients') per 10^9 value bytes written and read.
func (c *clientsResult) clientPerGBMoved() float64 {
	return c.clientCPU.Seconds() / (float64(c.in.bytes+c.out.bytes) / 1e9)
}

// runClients runs the many-clients workload against proc: 4 producers and
// 2 groups of 2 consumers on a 24-partition topic. The consumers join
// first and stay, paused, while the producers write w.records on their
// own; then the groups read them from the start; then the producers write
// w.records more while the groups read along; then the producers run at
// rate records/s in total (0: half of this run's fan-out rate in) for the
// latency phase.
func (r *run) runClients(ctx context.Context, p peer, proc *cluster, w workload) (*workloadResult, error) {
	topic := "bench-" + w.name
	if err := createTopicN(ctx, proc, topic, clientsPartitions, r.s); err != nil {
		return nil, err
	}
	r.prog.printf("%s: %d consumers joining %d groups", w.name, clientsGroups*clientsPerGroup, clientsGroups)
	f, err := startFanout(ctx, proc, topic, w.name)
	if err != nil {
		return nil, err
	}
	defer f.close()
	if err := f.awaitAssigned(ctx, 60*time.Second); err != nil {
		return nil, err
	}

	var cr clientsResult
	s := r.s
	s.duration = 0 // every phase needs a known record count to wait for
	r.prog.printf("%s produce: %s records by %d producers, consumers paused", w.name, count(w.records), clientsProducers)
	if cr.produce, err = produceMaxN(ctx, proc, topic, w, s, clientsProducers, r.prog); err != nil {
		return nil, err
	}
	if cr.produce.writeback, err = writeback(); err != nil {
		return nil, err
	}
	r.prog.printf("%s produce: %s rec/s, %.1f MB/s, broker CPU %.2f s/GB, clients %.2f s/GB (system %.2f; kernel threads %.2f; writeback after %.2f)", w.name,
		count(int64(cr.produce.recordsPerSec())), cr.produce.mbPerSec(), cr.produce.cpuPerGB(), cr.produce.clientPerGB(), cr.produce.sysPerGB(), cr.produce.kthreadsPerGB(),
		cr.produce.writebackPerGB())

	r.prog.printf("%s consume: %d groups read %s records each from the start", w.name, clientsGroups, count(cr.produce.records))
	meter, err := startCPU(proc)
	if err != nil {
		return nil, err
	}
	mark := f.mark()
	f.resume()
	if cr.consume, err = f.await(ctx, cr.produce.records, mark, r.prog); err != nil {
		return nil, err
	}
	cpu, other, err := meter.stop()
	if err != nil {
		return nil, err
	}
	cr.consume.cpu, cr.consume.cpuPer, cr.consume.other, cr.consume.client = sum(cpu), cpu, other, meter.client
	r.prog.printf("%s consume: %s rec/s, %.1f MB/s, broker CPU %.2f s/GB, clients %.2f s/GB", w.name,
		count(int64(cr.consume.recordsPerSec())), cr.consume.mbPerSec(), cr.consume.cpuPerGB(), cr.consume.clientPerGB())

	r.prog.printf("%s fan-out: %s records by %d producers, read along by %d groups", w.name, count(w.records), clientsProducers, clientsGroups)
	if meter, err = startCPU(proc); err != nil {
		return nil, err
	}
	mark = f.mark()
	if cr.in, err = produceMaxN(ctx, proc, topic, w, s, clientsProducers, r.prog); err != nil {
		return nil, err
	}
	if cr.out, err = f.await(ctx, cr.produce.records+cr.in.records, mark, r.prog); err != nil {
		return nil, err
	}
	if cpu, other, err = meter.stop(); err != nil {
		return nil, err
	}
	cr.cpu, cr.out.other, cr.clientCPU = sum(cpu), other, meter.client
	r.prog.printf("%s fan-out: in %s rec/s (%.1f MB/s), out %s rec/s (%.1f MB/s), broker CPU %.2f s/GB moved, clients %.2f s/GB moved", w.name,
		count(int64(cr.in.recordsPerSec())), cr.in.mbPerSec(), count(int64(cr.out.recordsPerSec())), cr.out.mbPerSec(), cr.cpuPerGBMoved(), cr.clientPerGBMoved())

	rate := r.rate
	if rate == 0 {
		if _, ok := r.peak[w.name]; !ok {
			r.peak[w.name] = peakRate{cr.in.recordsPerSec(), p.name()}
		}
		rate = r.peak[w.name].recordsPerSec / 2
	}
	r.prog.printf("%s latency: %s rec/s by %d producers for %v (+%v warm-up), groups reading along", w.name, count(int64(rate)), clientsProducers, r.s.paced, r.s.warmup)
	producers := make([]*kgo.Client, clientsProducers)
	for i := range producers {
		if producers[i], err = kgo.NewClient(producerOpts(proc, s)...); err != nil {
			closeAll(producers)
			return nil, err
		}
	}
	cr.paced, err = producePacedBy(ctx, proc, producers, topic, w, rate, time.Millisecond, s)
	closeAll(producers)
	if err != nil {
		return nil, err
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	r.prog.printf("%s latency: p50 %v, p99 %v, max %v, lag %v; broker %.2f cores, clients %.2f cores", w.name, ms(cr.paced.lat.p50), ms(cr.paced.lat.p99), ms(cr.paced.lat.max),
		cr.paced.lag.Round(time.Millisecond), cr.paced.brokerCores(), cr.paced.clientCores())
	return &workloadResult{clients: &cr}, nil
}

// fanout is the many-clients workload's consumers: clientsGroups groups
// of clientsPerGroup clients each, all subscribed to one topic from its
// start, each client polled by its own goroutine until close.
type fanout struct {
	topic   string
	clients []*kgo.Client
	group   []int // clients[i] is a member of group group[i]

	mu sync.Mutex // guards the following, so that records and bytes are read together
	// got is the records each group has read, bytes the value bytes
	// read by all groups.
	got   [clientsGroups]int64
	bytes int64

	assigned []atomic.Int64 // partitions each client owns now
	firstErr atomic.Pointer[error]

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startFanout creates the consumers, paused so that they join their
// groups without reading yet. Group names are unique to the run so that no
// committed offset from an earlier workload applies.
func startFanout(ctx context.Context, c *cluster, topic, name string) (*fanout, error) {
	f := &fanout{topic: topic, assigned: make([]atomic.Int64, clientsGroups*clientsPerGroup)}
	ctx, f.cancel = context.WithCancel(ctx)
	for g := range clientsGroups {
		group := fmt.Sprintf("bench-%s-g%d-%d", name, g, time.Now().UnixNano())
		for range clientsPerGroup {
			i := len(f.clients)
			track := func(delta int64) func(context.Context, *kgo.Client, map[string][]int32) {
				return func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
					f.assigned[i].Add(delta * int64(len(m[topic])))
				}
			}
			cl, err := kgo.NewClient(append(c.clientOpts(),
				kgo.ConsumerGroup(group),
				kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.OnPartitionsAssigned(track(1)),
				kgo.OnPartitionsRevoked(track(-1)),
				kgo.OnPartitionsLost(track(-1)),
			)...)
			if err != nil {
				f.close()
				return nil, err
			}
			cl.PauseFetchTopics(topic)
			f.clients = append(f.clients, cl)
			f.group = append(f.group, g)
			f.wg.Go(func() { f.poll(ctx, cl, g) })
		}
	}
	return f, nil
}

// poll reads fetches for group g's client cl until ctx is done or the
// client is closed.
func (f *fanout) poll(ctx context.Context, cl *kgo.Client, g int) {
	for {
		fs := cl.PollFetches(ctx)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return
		}
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.Canceled) {
				err := fmt.Errorf("consume %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
				f.firstErr.CompareAndSwap(nil, &err)
			}
		}
		var n, nb int64
		fs.EachRecord(func(r *kgo.Record) { n++; nb += int64(len(r.Value)) })
		f.mu.Lock()
		f.got[g] += n
		f.bytes += nb
		f.mu.Unlock()
	}
}

// err is the first fetch error any consumer saw.
func (f *fanout) err() error {
	if e := f.firstErr.Load(); e != nil {
		return *e
	}
	return nil
}

// awaitAssigned waits until, in every group, each member owns at least
// one partition and the members own all of them between them: the
// groups are stable.
func (f *fanout) awaitAssigned(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		stable := true
		for g := range clientsGroups {
			var total int64
			for i := range f.clients {
				if f.group[i] != g {
					continue
				}
				n := f.assigned[i].Load()
				stable = stable && n > 0
				total += n
			}
			stable = stable && total == clientsPartitions
		}
		if stable {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consumer groups not stable after %v (partitions owned per consumer: %v)", timeout, f.owned())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond): // polling callbacks' counters: nothing to wait on
		}
	}
}

// owned lists the partitions each consumer owns, for an error message.
func (f *fanout) owned() []int64 {
	s := make([]int64, len(f.assigned))
	for i := range f.assigned {
		s[i] = f.assigned[i].Load()
	}
	return s
}

// resume lets every consumer fetch.
func (f *fanout) resume() {
	for _, cl := range f.clients {
		cl.ResumeFetchTopics(f.topic)
	}
}

// fanoutMark is what the groups had read at the start of a phase.
type fanoutMark struct {
	at    time.Time
	got   [clientsGroups]int64
	bytes int64
}

// mark notes the time and what the groups have read so far.
func (f *fanout) mark() fanoutMark {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fanoutMark{at: time.Now(), got: f.got, bytes: f.bytes}
}

// await waits until every group has read at least total records since the
// consumers started (a rebalance may deliver some twice), and returns
// what the groups read since the mark m, and how fast, as a throughput
// without CPU figures.
func (f *fanout) await(ctx context.Context, total int64, m fanoutMark, prog *progress) (throughput, error) {
	var all atomic.Int64
	stopProg := prog.watch(&all, clientsGroups*total, true)
	defer stopProg()
	var (
		last     int64 = -1
		progress       = time.Now()
		end      fanoutMark
	)
	for {
		end = f.mark()
		done := true
		var n int64
		for g := range clientsGroups {
			v := end.got[g]
			n += v
			done = done && v >= total
		}
		all.Store(n)
		if done {
			break
		}
		if err := f.err(); err != nil {
			return throughput{}, err
		}
		if n != last {
			last, progress = n, time.Now()
		} else if time.Since(progress) > stallTimeout {
			return throughput{}, fmt.Errorf("consume: no record read for %v, at %d of %d records per group", stallTimeout, n/clientsGroups, total)
		}
		select {
		case <-ctx.Done():
			return throughput{}, fmt.Errorf("consume: %d of %d records per group: %w", n/clientsGroups, total, ctx.Err())
		case <-time.After(time.Millisecond): // polling the consumers' counters: nothing to wait on
		}
	}
	elapsed := end.at.Sub(m.at)
	var recs int64
	for g := range clientsGroups {
		recs += end.got[g] - m.got[g]
	}
	return throughput{records: recs, bytes: end.bytes - m.bytes, elapsed: elapsed}, nil
}

// close stops the consumers and waits for their goroutines.
func (f *fanout) close() {
	f.cancel()
	closeAll(f.clients)
	f.wg.Wait()
}
