package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The connection-heavy workload: many small producers, each its own client
// and so its own connections, spread over many partitions at a modest
// rate each. What it measures is the broker's cost per connection and per
// partition (memory above all), not its throughput.
const (
	connsPartitions  = 1000
	connsProducers   = 200
	connsRatePerProd = 100                   // records/s of each producer
	connsTick        = 10 * time.Millisecond // how often each producer wakes to produce what is due
)

// connsResult is one round of the connection-heavy workload on one broker.
type connsResult struct {
	producers, partitions int
	paced                 pacedResult
	// rssIdle is the brokers' resident memory once the topic exists and
	// before any producer connects; rssPeak the most seen while the
	// producers ran (sampled every 100 ms); both summed over the broker
	// processes, in bytes. fdsPeak is the most open file descriptors
	// (connections, segment files) seen meanwhile.
	rssIdle, rssPeak int64
	fdsPeak          int
}

// connsShape returns the producers and partitions of the connection-heavy
// workload: the full counts, or a tenth of the partitions and a quarter of
// the producers for -quick.
func connsShape(quick bool) (producers, parts int) {
	if quick {
		return connsProducers / 4, connsPartitions / 10
	}
	return connsProducers, connsPartitions
}

// runConns runs the connection-heavy workload against proc: every
// producer connects and has one record acknowledged (so that connection
// set-up is not measured), then all produce at connsRatePerProd records/s
// each for the latency phase while the brokers' memory is sampled.
func (r *run) runConns(ctx context.Context, proc *cluster, w workload) (*workloadResult, error) {
	nprod, nparts := connsShape(r.quick)
	cr := connsResult{producers: nprod, partitions: nparts}
	topic := "bench-" + w.name
	r.prog.printf("%s: creating a topic of %d partitions", w.name, nparts)
	if err := createTopicN(ctx, proc, topic, int32(nparts), r.s); err != nil {
		return nil, err
	}
	cr.rssIdle = rssOf(proc)

	r.prog.printf("%s: %d producers connecting (broker RSS %.0f MiB)", w.name, nprod, mib(cr.rssIdle))
	// Sample from before the first connection, so the peak covers
	// connecting too.
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Go(func() { cr.rssPeak, cr.fdsPeak = samplePeaks(sampleCtx, proc, 100*time.Millisecond) })
	defer func() { stopSampling(); sampler.Wait() }()
	s := r.s
	clients := make([]*kgo.Client, nprod)
	defer closeAll(clients)
	val := payload(w.size)
	errs := make(chan error, nprod)
	for i := range clients {
		cl, err := kgo.NewClient(producerOpts(proc, s)...)
		if err != nil {
			return nil, err
		}
		clients[i] = cl
		go func() { errs <- cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: val}).FirstErr() }()
	}
	for range clients {
		if err := <-errs; err != nil {
			return nil, fmt.Errorf("first produce: %w", err)
		}
	}

	rate := float64(nprod * connsRatePerProd)
	r.prog.printf("%s latency: %s rec/s by %d producers (%d rec/s each) for %v (+%v warm-up)", w.name, count(int64(rate)), nprod, connsRatePerProd, s.paced, s.warmup)
	var err error
	cr.paced, err = producePacedBy(ctx, proc, clients, topic, w, rate, connsTick, s)
	stopSampling()
	sampler.Wait()
	if err != nil {
		return nil, err
	}
	r.prog.printf("%s latency: p50 %v, p99 %v, max %v, lag %v; broker RSS %.0f MiB idle, %.0f MiB peak, %d fds peak", w.name,
		ms(cr.paced.lat.p50), ms(cr.paced.lat.p99), ms(cr.paced.lat.max), cr.paced.lag.Round(time.Millisecond), mib(cr.rssIdle), mib(cr.rssPeak), cr.fdsPeak)
	return &workloadResult{conns: &cr}, nil
}

// samplePeaks reads the brokers' resident memory and open file
// descriptors every interval until ctx is done, and returns the most of
// each it saw.
func samplePeaks(ctx context.Context, c *cluster, interval time.Duration) (rss int64, fds int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rss, fds = max(rss, rssOf(c)), max(fds, fdsOf(c))
		select {
		case <-ctx.Done():
			return rss, fds
		case <-t.C:
		}
	}
}

// rssOf is the resident memory of c's broker processes, summed, in bytes
// (VmRSS of /proc/PID/status); a process it cannot read counts 0.
func rssOf(c *cluster) int64 {
	var total int64
	for _, pid := range c.pids() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				total += kb << 10
			}
		}
	}
	return total
}

// fdsOf is the number of open file descriptors of c's broker processes.
func fdsOf(c *cluster) int {
	total := 0
	for _, pid := range c.pids() {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		total += len(ents)
	}
	return total
}

// mib is n bytes in MiB.
func mib(n int64) float64 { return float64(n) / (1 << 20) }
