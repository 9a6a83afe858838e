package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// partitions is the partition count of every benchmark topic.
const partitions = 6

// A workload is one record size, produced at full speed, consumed from the
// start, then produced again at a fixed rate to measure latency.
type workload struct {
	name    string
	size    int   // value bytes per record; records have no key
	records int64 // records in the produce phase, when no duration is set
}

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
}

func (t throughput) recordsPerSec() float64 { return float64(t.records) / t.elapsed.Seconds() }
func (t throughput) mbPerSec() float64      { return float64(t.bytes) / 1e6 / t.elapsed.Seconds() }

// cpuPerGB is broker CPU seconds (summed over the broker processes) per
// 10^9 value bytes moved in the phase.
func (t throughput) cpuPerGB() float64 { return t.cpu.Seconds() / (float64(t.bytes) / 1e9) }

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
}

// payload returns a value of n pseudo-random bytes, shared by every record.
func payload(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// createTopic creates topic with the benchmark's partition count and
// s's replication factor and min.insync.replicas, and waits until every
// partition has a leader and all its replicas in sync.
func createTopic(ctx context.Context, c *cluster, topic string, s settings) error {
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
	resp, err := adm.CreateTopic(ctx, partitions, max(s.replicas, 1), configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			td := md.Topics[topic]
			ready := td.Err == nil && len(td.Partitions) == partitions
			for _, p := range td.Partitions {
				ready = ready && p.Err == nil && p.Leader >= 0 && len(p.ISR) == int(max(s.replicas, 1))
			}
			if ready {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s: partitions have no leader or not all replicas in sync after 30s (last error %v)", topic, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a remote broker: nothing to wait on
	}
}

// produceMax produces w's records (or for s.duration) as fast as one
// producer can and returns once all are acknowledged.
func produceMax(ctx context.Context, c *cluster, topic string, w workload, s settings, prog *progress) (throughput, error) {
	cl, err := kgo.NewClient(producerOpts(c, s)...)
	if err != nil {
		return throughput{}, err
	}
	defer cl.Close()

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
	var n int64
	for ; s.duration > 0 || n < w.records; n++ {
		if n&1023 == 0 {
			if s.duration > 0 && time.Since(start) >= s.duration {
				break
			}
			if firstErr.Load() != nil || ctx.Err() != nil {
				break
			}
		}
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: val}, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return throughput{}, err
	}
	elapsed := time.Since(start)
	cpu, other, err := meter.stop()
	if err != nil {
		return throughput{}, err
	}
	if e := firstErr.Load(); e != nil {
		return throughput{}, fmt.Errorf("produce: %w", *e)
	}
	return throughput{records: n, bytes: n * int64(w.size), elapsed: elapsed, cpu: sum(cpu), cpuPer: cpu, other: other}, nil
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
	return throughput{records: got.Load(), bytes: bytes.Load(), elapsed: elapsed, cpu: sum(cpu), cpuPer: cpu, other: other}, nil
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
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var (
		sent int64
		lag  time.Duration
	)
	for now := range tick.C {
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
	if err := cl.Flush(ctx); err != nil {
		return pacedResult{}, err
	}
	if e := firstErr.Load(); e != nil {
		return pacedResult{}, fmt.Errorf("paced produce: %w", *e)
	}
	_, other, err := meter.stop()
	if err != nil {
		return pacedResult{}, err
	}
	return pacedResult{rate: rate, lag: lag, lat: lats.summarize(), other: other}, nil
}
