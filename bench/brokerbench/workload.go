package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// partitions is the partition count of the single-client workloads'
// topics.
const partitions = 6

// A workload is one record size and how it is driven. The single-client
// kind is produced at full speed by one producer, consumed from the start
// by one consumer, then produced again at a fixed rate to measure latency;
// the other kinds are in clients.go and conns.go.
type workload struct {
	name    string
	kind    workloadKind
	size    int   // value bytes per record; records have no key
	records int64 // records in the produce phase, when no duration is set
}

// workloadKind says which phases a workload runs.
type workloadKind int

const (
	singleClient workloadKind = iota // one producer, one consumer
	manyClients                      // clients.go: 4 producers, 2 groups of 2 consumers, 24 partitions
	manyConns                        // conns.go: 200 producers, 1,000 partitions, a modest rate each
)

// settings are the client-side knobs, identical for every broker.
type settings struct {
	duration time.Duration // produce phase length; 0 means produce w.records
	linger   time.Duration // kgo.ProducerLinger
	paced    time.Duration // measured length of the latency phase
	warmup   time.Duration // unmeasured start of the latency phase
	// replicas is the replication factor of the benchmark's topics, and
	// the brokers in each peer's cluster; minISR their
	// min.insync.replicas (unset when replicas is 1).
	replicas int16
	minISR   int
}

// producerOpts are the franz-go options of every producer in the benchmark:
// acks=all and idempotence as franz-go defaults them, default batching
// (64 KiB sticky partitioning, 1 MB batches, 50,000 buffered records), a
// small linger, and no compression so that the brokers store and serve
// every payload byte.
func producerOpts(c *cluster, s settings) []kgo.Opt {
	return append(c.clientOpts(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(s.linger),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	)
}

// throughput is the outcome of a full-speed phase.
type throughput struct {
	records int64
	bytes   int64 // value bytes
	elapsed time.Duration
	cpu     time.Duration   // broker processes' CPU during the phase, summed
	cpuPer  []time.Duration // each broker process's CPU during the phase
	other   float64         // cores kept busy by other processes during the phase
	// sys is the part of cpu spent in the kernel on the brokers' behalf
	// (system calls, page faults); kthreads the machine's kernel threads'
	// CPU over the phase (page cache writeback, journal, softirq).
	sys, kthreads time.Duration
	// writeback is the CPU that writing back the dirty page cache took
	// right after the phase (cpu.go, writeback): the deferred disk work of
	// a broker that does not fsync.
	writeback time.Duration
	// client is the benchmark process's CPU during the phase: the
	// clients' side of the same work, on the same cores.
	client time.Duration
}

func (t throughput) recordsPerSec() float64 { return float64(t.records) / t.elapsed.Seconds() }
func (t throughput) mbPerSec() float64      { return float64(t.bytes) / 1e6 / t.elapsed.Seconds() }

// cpuPerGB is broker CPU seconds (summed over the broker processes) per
// 10^9 value bytes moved in the phase.
func (t throughput) cpuPerGB() float64 { return t.cpu.Seconds() / (float64(t.bytes) / 1e9) }

// sysPerGB and kthreadsPerGB are sys and kthreads per 10^9 value bytes.
func (t throughput) sysPerGB() float64 { return t.sys.Seconds() / (float64(t.bytes) / 1e9) }
func (t throughput) kthreadsPerGB() float64 {
	return t.kthreads.Seconds() / (float64(t.bytes) / 1e9)
}

func (t throughput) writebackPerGB() float64 {
	return t.writeback.Seconds() / (float64(t.bytes) / 1e9)
}

// clientPerGB is the benchmark process's CPU seconds per 10^9 value bytes.
func (t throughput) clientPerGB() float64 { return t.client.Seconds() / (float64(t.bytes) / 1e9) }

// cpuPerGBOf is broker process i's share of cpuPerGB.
func (t throughput) cpuPerGBOf(i int) float64 {
	return t.cpuPer[i].Seconds() / (float64(t.bytes) / 1e9)
}

// pacedResult is the outcome of the latency phase.
type pacedResult struct {
	rate float64 // records/s asked for
	// lag is how far the producer fell behind its schedule at worst in the
	// measured window, because Produce blocked on a full buffer: when it is
	// more than a few milliseconds the broker did not keep up with rate,
	// and the latencies (measured from the Produce call) understate it.
	lag   time.Duration
	lat   summary
	other float64 // cores kept busy by other processes during the phase
	// cpu is the broker processes' CPU during the phase, warm-up
	// included, and bytes the value bytes due over it.
	cpu   time.Duration
	bytes int64
	// client is the benchmark process's CPU over the same span, and
	// elapsed that span: cpu and client over elapsed are the cores each
	// side kept busy, which on a small machine decide the tail.
	client, elapsed time.Duration
}

// brokerCores and clientCores are the cores the broker processes and the
// benchmark's clients kept busy on average over the phase.
func (p pacedResult) brokerCores() float64 { return p.cpu.Seconds() / p.elapsed.Seconds() }
func (p pacedResult) clientCores() float64 { return p.client.Seconds() / p.elapsed.Seconds() }

// payload returns a value of n pseudo-random bytes, shared by every record.
func payload(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// createTopic creates topic with the single-client workloads' partition
// count and s's replication factor and min.insync.replicas, and waits until
// every partition has a leader and all its replicas in sync.
func createTopic(ctx context.Context, c *cluster, topic string, s settings) error {
	return createTopicN(ctx, c, topic, partitions, s)
}

// createTopicN is createTopic with n partitions.
func createTopicN(ctx context.Context, c *cluster, topic string, n int32, s settings) error {
	cl, err := kgo.NewClient(c.clientOpts()...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var configs map[string]*string
	if s.replicas > 1 {
		configs = map[string]*string{"min.insync.replicas": kadm.StringPtr(strconv.Itoa(s.minISR))}
	}
	resp, err := adm.CreateTopic(ctx, n, max(s.replicas, 1), configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	wait := 30 * time.Second
	if n > 100 {
		wait = 120 * time.Second // a JVM creating 1,000 partitions' files on a loaded machine
	}
	deadline := time.Now().Add(wait)
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			td := md.Topics[topic]
			ready := td.Err == nil && len(td.Partitions) == int(n)
			for _, p := range td.Partitions {
				ready = ready && p.Err == nil && p.Leader >= 0 && len(p.ISR) == int(max(s.replicas, 1))
			}
			if ready {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s: partitions have no leader or not all replicas in sync after %v (last error %v)", topic, wait, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a remote broker: nothing to wait on
	}
}

// produceMax produces w's records (or for s.duration) as fast as one
// producer can and returns once all are acknowledged.
func produceMax(ctx context.Context, c *cluster, topic string, w workload, s settings, prog *progress) (throughput, error) {
	return produceMaxN(ctx, c, topic, w, s, 1, prog)
}

// produceMaxN is produceMax with n producers, each its own client, that
// share w's records (or all produce for s.duration) at once; the phase
// ends when the last of them has every record acknowledged.
func produceMaxN(ctx context.Context, c *cluster, topic string, w workload, s settings, n int, prog *progress) (throughput, error) {
	clients := make([]*kgo.Client, n)
	for i := range clients {
		cl, err := kgo.NewClient(producerOpts(c, s)...)
		if err != nil {
			closeAll(clients)
			return throughput{}, err
		}
		clients[i] = cl
	}
	defer closeAll(clients)

	var (
		acked    atomic.Int64
		firstErr atomic.Pointer[error]
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			firstErr.CompareAndSwap(nil, &err)
		}
		acked.Add(1)
	}
	val := payload(w.size)
	stopProg := prog.watch(&acked, w.records, s.duration == 0)
	defer stopProg()

	meter, err := startCPU(c)
	if err != nil {
		return throughput{}, err
	}
	start := time.Now()
	var (
		produced atomic.Int64
		flushErr atomic.Pointer[error]
		wg       sync.WaitGroup
	)
	for i, cl := range clients {
		share := w.records / int64(n)
		if i == 0 {
			share += w.records % int64(n)
		}
		wg.Go(func() {
			var k int64
			for ; s.duration > 0 || k < share; k++ {
				if k&1023 == 0 {
					if s.duration > 0 && time.Since(start) >= s.duration {
						break
					}
					if firstErr.Load() != nil || ctx.Err() != nil {
						break
					}
				}
				cl.Produce(ctx, &kgo.Record{Topic: topic, Value: val}, promise)
			}
			produced.Add(k)
			if err := cl.Flush(ctx); err != nil {
				flushErr.CompareAndSwap(nil, &err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu, other, err := meter.stop()
	if err != nil {
		return throughput{}, err
	}
	if e := flushErr.Load(); e != nil {
		return throughput{}, *e
	}
	if e := firstErr.Load(); e != nil {
		return throughput{}, fmt.Errorf("produce: %w", *e)
	}
	recs := produced.Load()
	return throughput{records: recs, bytes: recs * int64(w.size), elapsed: elapsed, cpu: sum(cpu), cpuPer: cpu, other: other, sys: meter.sys, kthreads: meter.kthreads, client: meter.client}, nil
}

// closeAll closes every client that is not nil.
func closeAll(clients []*kgo.Client) {
	for _, cl := range clients {
		if cl != nil {
			cl.Close()
		}
	}
}

// consumeAll reads topic from the start of every partition until it has
// seen want records.
func consumeAll(ctx context.Context, c *cluster, topic string, want int64, prog *progress) (throughput, error) {
	cl, err := kgo.NewClient(append(c.clientOpts(),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return throughput{}, err
	}
	defer cl.Close()

	var got, bytes atomic.Int64
	stopProg := prog.watch(&got, want, true)
	defer stopProg()

	meter, err := startCPU(c)
	if err != nil {
		return throughput{}, err
	}
	start := time.Now()
	for got.Load() < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return throughput{}, fmt.Errorf("consume: %d of %d records: %w", got.Load(), want, err)
		}
		for _, fe := range fs.Errors() {
			return throughput{}, fmt.Errorf("consume %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
		}
		var nb int64
		fs.EachRecord(func(r *kgo.Record) { nb += int64(len(r.Value)) })
		bytes.Add(nb)
		got.Add(int64(fs.NumRecords()))
	}
	elapsed := time.Since(start)
	cpu, other, err := meter.stop()
	if err != nil {
		return throughput{}, err
	}
	if n := got.Load(); n != want {
		return throughput{}, fmt.Errorf("consume: got %d records, produced %d", n, want)
	}
	return throughput{records: got.Load(), bytes: bytes.Load(), elapsed: elapsed, cpu: sum(cpu), cpuPer: cpu, other: other, sys: meter.sys, kthreads: meter.kthreads, client: meter.client}, nil
}

// producePaced produces at rate records/s for s.warmup+s.paced and returns
// the latency from each Produce call to its promise, for the records
// produced after the warm-up.
func producePaced(ctx context.Context, c *cluster, topic string, w workload, rate float64, s settings) (pacedResult, error) {
	if rate <= 0 {
		return pacedResult{}, errors.New("paced produce: no rate")
	}
	cl, err := kgo.NewClient(producerOpts(c, s)...)
	if err != nil {
		return pacedResult{}, err
	}
	defer cl.Close()
	return producePacedBy(ctx, c, []*kgo.Client{cl}, topic, w, rate, time.Millisecond, s)
}

// producePacedBy is producePaced through clients, which share the rate
// equally, each producing every tick what is due by then; the latencies
// of all of them make one distribution, and lag is the worst of theirs.
func producePacedBy(ctx context.Context, c *cluster, clients []*kgo.Client, topic string, w workload, rate float64, tick time.Duration, s settings) (pacedResult, error) {
	if rate <= 0 {
		return pacedResult{}, errors.New("paced produce: no rate")
	}
	lats := newLatencies(int(rate*s.paced.Seconds()*1.1) + 1024)
	var firstErr atomic.Pointer[error]
	val := payload(w.size)

	meter, err := startCPU(c)
	if err != nil {
		return pacedResult{}, err
	}
	start := time.Now()
	measureFrom := start.Add(s.warmup)
	end := measureFrom.Add(s.paced)
	each := rate / float64(len(clients))
	lags := make([]time.Duration, len(clients))
	var wg sync.WaitGroup
	for i, cl := range clients {
		// Producers start spread over one tick, as independent
		// applications would, rather than all on the same instant.
		offset := tick * time.Duration(i) / time.Duration(len(clients))
		wg.Go(func() {
			lags[i] = pace(ctx, cl, topic, val, each, tick, start.Add(offset), measureFrom, end, lats, &firstErr)
			if err := cl.Flush(ctx); err != nil {
				firstErr.CompareAndSwap(nil, &err)
			}
		})
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return pacedResult{}, fmt.Errorf("paced produce: %w", *e)
	}
	cpu, other, err := meter.stop()
	if err != nil {
		return pacedResult{}, err
	}
	recs := int64(rate * end.Sub(start).Seconds())
	return pacedResult{rate: rate, lag: slices.Max(lags), lat: lats.summarize(), other: other,
		cpu: sum(cpu), bytes: recs * int64(w.size), client: meter.client, elapsed: time.Since(start)}, nil
}

// pace produces val to topic through cl at rate records/s from start
// until end, waking every tick to produce the records due by then, and
// adds the latency of those due from measureFrom on to lats. It returns
// how far it fell behind its schedule at worst after measureFrom: Produce
// blocks when the client's buffer is full, that is when the broker does
// not keep up.
func pace(ctx context.Context, cl *kgo.Client, topic string, val []byte, rate float64, tick time.Duration,
	start, measureFrom, end time.Time, lats *latencies, firstErr *atomic.Pointer[error]) time.Duration {
	if d := time.Until(start); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return 0
		}
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	var (
		sent int64
		lag  time.Duration
	)
	for now := range t.C {
		if !now.Before(end) || ctx.Err() != nil || firstErr.Load() != nil {
			break
		}
		if behind := now.Sub(start) - time.Duration(float64(sent)/rate*1e9); !now.Before(measureFrom) && behind > lag {
			lag = behind
		}
		due := int64(rate * now.Sub(start).Seconds())
		if sent >= due {
			continue
		}
		// Every record of this tick's burst is due now: its latency runs
		// from the tick, so time spent producing the burst counts too. One
		// timestamp and one callback per burst keep the client's own cost
		// per record low, as in produceMax.
		t0 := time.Now()
		measured := !t0.Before(measureFrom)
		promise := func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
				return
			}
			if measured {
				lats.add(time.Since(t0))
			}
		}
		for ; sent < due; sent++ {
			cl.Produce(ctx, &kgo.Record{Topic: topic, Value: val}, promise)
		}
	}
	return lag
}
