package runnel

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/runnel-dev/runnel/topology"
)

// appMetrics are an App's counters: atomics for the Metrics snapshot and
// the Prometheus instruments, which exist whether or not they are
// registered.
type appMetrics struct {
	processed, restored, commits, aborts atomic.Int64
	dropped, deserErrors, prodErrors     atomic.Int64
	replacements                         atomic.Int64
	closed, standby                      atomic.Int64 // tasks closed, standby records applied

	prom *promMetrics
}

// promMetrics are the Prometheus instruments of one App.
type promMetrics struct {
	processed      *prometheus.CounterVec   // task
	processLatency *prometheus.HistogramVec // task
	e2eLatency     *prometheus.HistogramVec // task
	lag            *prometheus.GaugeVec     // task
	commitLatency  prometheus.Histogram
	commits        prometheus.Counter
	aborts         prometheus.Counter
	restored       *prometheus.CounterVec // task
	restoreRemain  *prometheus.GaugeVec   // task
	restoreRate    *prometheus.GaugeVec   // task
	dropped        *prometheus.CounterVec // task, reason
	cacheHitRatio  *prometheus.GaugeVec   // task
	deserErrors    *prometheus.CounterVec // task
	prodErrors     *prometheus.CounterVec // task
	replacements   prometheus.Counter
	state          *prometheus.GaugeVec   // state
	stalled        *prometheus.GaugeVec   // task
	offsetResets   *prometheus.CounterVec // task, topic
}

func newPromMetrics(app string) *promMetrics {
	cl := prometheus.Labels{"application_id": app}
	every := fmt.Sprint(latencySampleEvery)
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_stream_" + name, Help: help, ConstLabels: cl}, labels)
	}
	gaugeVec := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "runnel_stream_" + name, Help: help, ConstLabels: cl}, labels)
	}
	histVec := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "runnel_stream_" + name, Help: help, ConstLabels: cl, Buckets: buckets}, labels)
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_stream_" + name, Help: help, ConstLabels: cl})
	}
	return &promMetrics{
		processed: counterVec("records_processed_total", "Input records processed, by task; records processed again after an aborted transaction count again.", "task"),
		processLatency: histVec("process_latency_seconds", "Time to process one input record through its task's sub-topology. Sampled: observed for the first record of each batch a task processes (what one turn of its worker has queued) and then for one in "+every+", so the histogram counts every record when they come one at a time and about 1/"+every+" of them under load.",
			prometheus.ExponentialBuckets(1e-6, 4, 12), "task"),
		e2eLatency: histVec("end_to_end_latency_seconds", "Wall-clock time when an input record has been processed (its outputs handed to the producer) minus the record's timestamp. Sampled as process_latency_seconds: each batch's first record, then one in "+every+".",
			prometheus.ExponentialBuckets(0.001, 2, 20), "task"),
		lag: gaugeVec("consumer_lag", "Records in the task's input partitions past its consumer position, from the last fetch (high watermark, or last stable offset under exactly-once).", "task"),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "runnel_stream_commit_latency_seconds", ConstLabels: cl,
			Help: "Time of a successful commit: flushing the tasks and the producer, and committing offsets (in the transaction under exactly-once).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		commits:       counter("commits_total", "Successful commits."),
		aborts:        counter("aborts_total", "Aborted transactions (exactly-once), each followed by reprocessing from the committed offsets."),
		restored:      counterVec("restore_records_total", "Changelog records applied to restore the task's stores.", "task"),
		restoreRemain: gaugeVec("restore_remaining_records", "Changelog offsets the task's restoration has still to read; 0 once restored.", "task"),
		restoreRate:   gaugeVec("restore_rate_records_per_second", "Changelog records restored per second by the task's last or current restoration.", "task"),
		dropped:       counterVec("dropped_records_total", "Records dropped instead of processed, by task and reason (late: past a window's grace period).", "task", "reason"),
		cacheHitRatio: gaugeVec("cache_hit_ratio", "Share of the task's record-cache lookups that hit, since the task was created, as of the last commit.", "task"),
		deserErrors:   counterVec("deserialization_errors_total", "Input records skipped (or sent to a dead-letter topic) because they could not be deserialized.", "task"),
		prodErrors:    counterVec("production_errors_total", "Output records skipped because the broker rejected them.", "task"),
		replacements:  counter("worker_replacements_total", "Workers replaced after a failure (UncaughtError(ReplaceWorker))."),
		state:         gaugeVec("state", "1 for the application's current state (Kafka Streams' KafkaStreams.State), 0 for the others.", "state"),
		stalled:       gaugeVec("task_stalled", "1 while the task has input to read and its position has not moved for the stall timeout (StallTimeout), else 0.", "task"),
		offsetResets: counterVec("offset_resets_total", "Times the task's position in an input partition fell below the partition's log start (retention or DeleteRecords removed records it had not read) and reading resumed at the log start, skipping those records.",
			"task", "topic"),
	}
}

func (m *promMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.processed, m.processLatency, m.e2eLatency, m.lag, m.commitLatency, m.commits, m.aborts,
		m.restored, m.restoreRemain, m.restoreRate, m.dropped, m.cacheHitRatio, m.deserErrors, m.prodErrors, m.replacements, m.state, m.stalled, m.offsetResets}
}

// register registers the instruments with reg, all or none.
func (m *promMetrics) register(reg prometheus.Registerer) error {
	var done []prometheus.Collector
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return fmt.Errorf("stream: register metrics: %w", err)
		}
		done = append(done, c)
	}
	return nil
}

func (m *promMetrics) unregister(reg prometheus.Registerer) {
	for _, c := range m.collectors() {
		reg.Unregister(c)
	}
}

// initMetrics creates the instruments and registers them if asked to.
func (a *App) initMetrics() error {
	a.metrics.prom = newPromMetrics(a.opts.ApplicationID)
	a.metrics.prom.state.WithLabelValues(Created.String()).Set(1)
	if a.opts.MetricsRegisterer != nil {
		return a.metrics.prom.register(a.opts.MetricsRegisterer)
	}
	return nil
}

func (m *appMetrics) committed(d time.Duration) {
	m.commits.Add(1)
	m.prom.commits.Inc()
	m.prom.commitLatency.Observe(d.Seconds())
}

func (m *appMetrics) aborted() {
	m.aborts.Add(1)
	m.prom.aborts.Inc()
}

func (m *appMetrics) deserializationError(id topology.TaskID) {
	m.deserErrors.Add(1)
	m.prom.deserErrors.WithLabelValues(id.String()).Inc()
}

func (m *appMetrics) productionError(id topology.TaskID) {
	m.prodErrors.Add(1)
	m.prom.prodErrors.WithLabelValues(id.String()).Inc()
}

// RecordDropped implements topology.DropCounter.
func (m *appMetrics) RecordDropped(id topology.TaskID, reason topology.DropReason) {
	m.dropped.Add(1)
	m.prom.dropped.WithLabelValues(id.String(), string(reason)).Inc()
}

// taskMetrics are one task's instruments, resolved once so that the
// per-record path does not look labels up, and what the lag is made of.
type taskMetrics struct {
	app            *appMetrics
	processed      prometheus.Counter
	processLatency prometheus.Observer
	e2eLatency     prometheus.Observer
	lag            prometheus.Gauge
	cacheHitRatio  prometheus.Gauge // made on first use: tasks without a cache have none
	started        int64            // records whose processing started, for sampling
	// lags and next hold, by topic (a task reads one partition of each of
	// its topics), the partition's lag as of its last fetch and the offset
	// after the last record fetched from it.
	lags, next map[string]int64
}

func (m *appMetrics) forTask(id topology.TaskID) *taskMetrics {
	l := id.String()
	return &taskMetrics{
		app:            m,
		processed:      m.prom.processed.WithLabelValues(l),
		processLatency: m.prom.processLatency.WithLabelValues(l),
		e2eLatency:     m.prom.e2eLatency.WithLabelValues(l),
		lag:            m.prom.lag.WithLabelValues(l),
		lags:           map[string]int64{},
		next:           map[string]int64{},
	}
}

// dropTask removes the gauges of a task the worker no longer runs (its
// counters and histograms keep their totals): a lag or restore gauge left
// behind would report a task that has moved on.
func (m *appMetrics) dropTask(id topology.TaskID) {
	l := id.String()
	m.prom.lag.DeleteLabelValues(l)
	m.prom.cacheHitRatio.DeleteLabelValues(l)
	m.prom.restoreRemain.DeleteLabelValues(l)
	m.prom.restoreRate.DeleteLabelValues(l)
	m.prom.stalled.DeleteLabelValues(l)
}

// latencySampleEvery is how many records of a task go per observation of
// the latency histograms within a batch: two clock reads and two
// observations per record were 2-3% of a simple query's CPU, a sample of
// the distribution costs a sixteenth of that. Each batch's first record is
// observed too, so that a task that gets few records still has its
// latencies in every status interval.
const latencySampleEvery = 16

// startBatch is called before the task processes a batch of records: the
// first one's latencies are observed.
func (m *taskMetrics) startBatch() { m.started = 0 }

// startRecord is called as a record's processing starts. It returns the
// time it starts if the record's latencies are to be observed (the
// batch's first record, then one in latencySampleEvery), else the zero
// time.
func (m *taskMetrics) startRecord() time.Time {
	m.started++
	if m.started%latencySampleEvery != 1 {
		return time.Time{}
	}
	return time.Now()
}

// recordProcessed counts one record processed, whose processing began at
// start (from startRecord) and whose timestamp was ts, and observes its
// latencies if start is not zero.
func (m *taskMetrics) recordProcessed(start, ts time.Time) {
	m.app.processed.Add(1)
	m.processed.Inc()
	if start.IsZero() {
		return
	}
	end := time.Now()
	m.processLatency.Observe(end.Sub(start).Seconds())
	m.e2eLatency.Observe(max(end.Sub(ts), 0).Seconds())
}

func (m *taskMetrics) setCacheHitRatio(id topology.TaskID, ratio float64) {
	if m.cacheHitRatio == nil {
		m.cacheHitRatio = m.app.prom.cacheHitRatio.WithLabelValues(id.String())
	}
	m.cacheHitRatio.Set(ratio)
}

// setLag records the lag of the task's partition of topic.
func (m *taskMetrics) setLag(topic string, lag int64) {
	m.lags[topic] = max(lag, 0)
	var sum int64
	for _, l := range m.lags {
		sum += l
	}
	m.lag.Set(float64(sum))
}

// restoreProgress reports one task's restoration: a log line every
// restoreLogInterval and at the end, and the restore metrics.
type restoreProgress struct {
	r         *runner
	id        topology.TaskID
	start     time.Time
	lastLog   time.Time
	restored  prometheus.Counter
	remaining prometheus.Gauge
	rate      prometheus.Gauge
	n         int64 // records restored so far
}

// restoreLogInterval is how often a long restoration logs its progress.
const restoreLogInterval = 2 * time.Second

func (r *runner) restoreProgress(id topology.TaskID, remaining int64) *restoreProgress {
	l := id.String()
	p := r.app.metrics.prom
	now := time.Now()
	rp := &restoreProgress{r: r, id: id, start: now, lastLog: now,
		restored: p.restored.WithLabelValues(l), remaining: p.restoreRemain.WithLabelValues(l), rate: p.restoreRate.WithLabelValues(l)}
	rp.remaining.Set(float64(remaining))
	r.log.Info("stream: restoring", "task", id, "remaining", remaining)
	return rp
}

// update counts n more records applied, with remaining offsets to read.
func (p *restoreProgress) update(n, remaining int64) {
	p.n += n
	p.r.app.metrics.restored.Add(n)
	p.restored.Add(float64(n))
	p.remaining.Set(float64(remaining))
	now := time.Now()
	rate := p.rateAt(now)
	p.rate.Set(rate)
	if now.Sub(p.lastLog) >= restoreLogInterval {
		p.lastLog = now
		p.r.log.Info("stream: restoring", "task", p.id, "restored", p.n, "remaining", remaining, "records_per_second", int64(rate))
	}
}

// done logs the end of the restoration.
func (p *restoreProgress) done(err error) {
	now := time.Now()
	rate := p.rateAt(now)
	p.rate.Set(rate)
	if err != nil {
		p.r.log.Warn("stream: restoration failed", "task", p.id, "restored", p.n, "err", err)
		return
	}
	p.remaining.Set(0)
	p.r.log.Info("stream: restored", "task", p.id, "records", p.n, "seconds", now.Sub(p.start).Seconds(), "records_per_second", int64(rate))
}

func (p *restoreProgress) rateAt(now time.Time) float64 {
	secs := now.Sub(p.start).Seconds()
	if secs <= 0 {
		return 0
	}
	return float64(p.n) / secs
}
