package broker

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runnel-dev/runnel/broker/internal/log"
)

// The log cleaner: one log.Cleaner per broker compacts every partition
// whose cleanup.policy includes compact (user topics, __consumer_offsets,
// __transaction_state). Partitions are registered as they open and
// removed before they are deleted; the cleaner stops before the logs
// close.

// startCleaner starts the cleaner and registers the open partitions.
func (b *Broker) startCleaner() {
	c := log.NewCleaner(log.CleanerConfig{
		IOBytesPerSecond: b.cfg.LogCleanerIOBytesPerSecond,
		Backoff:          b.cfg.LogCleanerBackoff,
		Now:              b.cfg.Now,
		Logger:           b.logger.With("component", "log-cleaner"),
	})
	b.cleaner.Store(c)
	for _, p := range b.parts.all() {
		c.Add(p.log)
	}
}

// stopCleaner stops the cleaner, abandoning a clean in progress.
func (b *Broker) stopCleaner() {
	if c := b.cleaner.Load(); c != nil {
		c.Close()
	}
}

// cleanerAdd registers a newly opened partition with the cleaner, if it
// runs yet (startCleaner registers those opened before it).
func (b *Broker) cleanerAdd(p *partition) {
	if c := b.cleaner.Load(); c != nil {
		c.Add(p.log)
	}
}

// cleanerRemove unregisters a partition and waits for a clean of it to
// stop, before it is closed or deleted.
func (b *Broker) cleanerRemove(p *partition) {
	if c := b.cleaner.Load(); c != nil {
		c.Remove(p.log)
	}
}

// compactionConfig sets cleanup.policy, delete.retention.ms,
// min.compaction.lag.ms, max.compaction.lag.ms and
// min.cleanable.dirty.ratio in c from over (keyed by topic config name),
// using Kafka's defaults for those missing.
func compactionConfig(over map[string]string, c *log.Config) error {
	var errs []string
	policy := log.CleanupPolicy(0)
	for _, v := range strings.Split(valueOr(over, "cleanup.policy", "delete"), ",") {
		switch strings.TrimSpace(v) {
		case "delete":
			policy |= log.CleanupDelete
		case "compact":
			policy |= log.CleanupCompact
		case "":
		default:
			errs = append(errs, "cleanup.policy="+over["cleanup.policy"])
		}
	}
	if policy == 0 {
		policy = log.CleanupDelete
	}
	c.CleanupPolicy = policy
	ms := func(name, def string) time.Duration {
		n, err := strconv.ParseInt(strings.TrimSpace(valueOr(over, name, def)), 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, name+"="+over[name])
			n, _ = strconv.ParseInt(def, 10, 64)
		}
		if n > math.MaxInt64/int64(time.Millisecond) {
			return math.MaxInt64
		}
		return time.Duration(n) * time.Millisecond
	}
	c.DeleteRetention = ms("delete.retention.ms", "86400000")
	c.MinCompactionLag = ms("min.compaction.lag.ms", "0")
	c.MaxCompactionLag = ms("max.compaction.lag.ms", longMax)
	if c.MaxCompactionLag <= 0 {
		c.MaxCompactionLag = math.MaxInt64
	}
	r, err := strconv.ParseFloat(strings.TrimSpace(valueOr(over, "min.cleanable.dirty.ratio", "0.5")), 64)
	if err != nil || !(r >= 0 && r <= 1) {
		errs = append(errs, "min.cleanable.dirty.ratio="+over["min.cleanable.dirty.ratio"])
		r = log.DefaultMinCleanableDirtyRatio
	}
	c.MinCleanableDirtyRatio = r
	if len(errs) > 0 {
		return fmt.Errorf("broker: bad compaction configs, defaults used: %s", strings.Join(errs, ", "))
	}
	return nil
}

func valueOr(m map[string]string, k, def string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return def
}

// cleanerCollector reports the cleaner's totals and each compacted
// partition's dirty ratio at scrape time.
type cleanerCollector struct{ b *Broker }

var (
	descCleanerRuns = prometheus.NewDesc("runnel_broker_cleaner_runs_total",
		"Log cleaner runs that rewrote segments.", nil, nil)
	descCleanerBytes = prometheus.NewDesc("runnel_broker_cleaner_bytes_cleaned_total",
		"Segment bytes read by the log cleaner.", nil, nil)
	descDirtyRatio = prometheus.NewDesc("runnel_broker_log_dirty_ratio",
		"A compacted partition's dirty bytes over its closed segment bytes.", []string{"topic", "partition"}, nil)
)

func (c *cleanerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCleanerRuns
	ch <- descCleanerBytes
	ch <- descDirtyRatio
}

func (c *cleanerCollector) Collect(ch chan<- prometheus.Metric) {
	var st log.CleanerStats
	if cl := c.b.cleaner.Load(); cl != nil {
		st = cl.Stats()
	}
	ch <- prometheus.MustNewConstMetric(descCleanerRuns, prometheus.CounterValue, float64(st.Runs))
	ch <- prometheus.MustNewConstMetric(descCleanerBytes, prometheus.CounterValue, float64(st.BytesCleaned))
	for _, p := range c.b.parts.all() {
		if !p.log.Config().CleanupPolicy.Compact() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descDirtyRatio, prometheus.GaugeValue, p.log.DirtyRatio(), p.topic, strconv.Itoa(int(p.index)))
	}
}
