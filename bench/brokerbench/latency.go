package main

import (
	"slices"
	"sync/atomic"
	"time"
)

// latencies collects per-record latencies from concurrent promise
// callbacks into a preallocated slice; samples past its capacity are
// counted but dropped.
type latencies struct {
	n       atomic.Int64
	samples []time.Duration
}

func newLatencies(capacity int) *latencies {
	return &latencies{samples: make([]time.Duration, capacity)}
}

func (l *latencies) add(d time.Duration) {
	i := l.n.Add(1) - 1
	if i < int64(len(l.samples)) {
		l.samples[i] = d
	}
}

// summary is the distribution of one latency measurement.
type summary struct {
	count         int
	p50, p99, max time.Duration
}

// summarize sorts the samples and reads their percentiles. Call it once all
// adds are done.
func (l *latencies) summarize() summary {
	n := min(int(l.n.Load()), len(l.samples))
	s := l.samples[:n]
	if n == 0 {
		return summary{}
	}
	slices.Sort(s)
	return summary{count: n, p50: percentile(s, 0.50), p99: percentile(s, 0.99), max: s[n-1]}
}

// percentile returns the nearest-rank q-quantile of sorted s.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
