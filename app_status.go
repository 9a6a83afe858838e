package runnel

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/runnel-dev/runnel/internal/appstatus"
	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The status records: every StatusInterval, each instance writes what it
// is doing (its topology, tasks, rates, lag and restore progress) to the
// compacted topic appstatus.Topic, where the console finds it. The
// internal/appstatus package doc says why a topic.

const defaultStatusInterval = 5 * time.Second

// StatusInterval is how often the instance writes its status record (its
// topology and, per task, active or standby, records per second, lag and
// restore progress) to the compacted topic _runnel_app_status, which the
// Runnel console reads to show the application. The topic is created on
// first use (one partition, compacted); if it cannot be, the App logs a
// warning and runs without it. Default 5 s; 0 writes no status. (Kafka
// Streams has no equivalent.)
func StatusInterval(d time.Duration) AppOption {
	return appOpt(func(o *AppOptions) { o.StatusInterval = d; o.set |= setStatusInterval })
}

// statusPublisher writes the instance's status records. It runs on a
// goroutine of runWorkers, which waits for it before closing the instance.
type statusPublisher struct {
	in   *instance
	cl   *kgo.Client
	reg  *prometheus.Registry // the App's task instruments, to read them
	last map[string]taskCount // by task: the counts at the last record
	at   time.Time            // when the last record was made
}

// taskCount is what a rate is computed from.
type taskCount struct {
	processed           int64
	latencySum, latency float64 // end-to-end latency histogram sum (s) and count
}

func (in *instance) publishStatus(ctx context.Context) {
	o := in.app.opts
	if o.StatusInterval <= 0 {
		return
	}
	if err := in.ensureStatusTopic(ctx); err != nil {
		if ctx.Err() == nil {
			in.log.Warn("stream: no status records: cannot create their topic", "topic", appstatus.Topic, "err", err)
		}
		return
	}
	cl, err := kgo.NewClient(append(o.clientOpts(), kgo.SeedBrokers(in.brokers...), kgo.DefaultProduceTopic(appstatus.Topic))...)
	if err != nil {
		in.log.Warn("stream: no status records", "err", err)
		return
	}
	defer cl.Close()
	p := &statusPublisher{in: in, cl: cl, reg: statusRegistry(in.app.metrics.prom), last: map[string]taskCount{}, at: time.Now()}
	key := appstatus.Key(o.ApplicationID, in.process)
	t := time.NewTicker(o.StatusInterval)
	defer t.Stop()
	for {
		// A record that cannot be written is skipped: the next one
		// replaces it, and the App does not depend on it.
		rec := &kgo.Record{Key: key, Value: appstatus.Encode(p.status(time.Now()))}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil && ctx.Err() == nil {
			in.log.Debug("stream: status record not written", "err", err)
		}
		select {
		case <-ctx.Done():
			// A clean stop says so, so that the console does not show
			// the instance as crashed.
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			cl.ProduceSync(dctx, &kgo.Record{Key: key})
			cancel()
			return
		case <-t.C:
		}
	}
}

// statusRegistry is a registry of the task instruments a status record
// reports, for gather to read.
func statusRegistry(m *promMetrics) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{m.processed, m.e2eLatency, m.lag, m.restored, m.restoreRemain, m.restoreRate} {
		reg.MustRegister(c) // distinct instruments of a fresh registry
	}
	return reg
}

func (in *instance) ensureStatusTopic(ctx context.Context) error {
	rf := int16(in.app.opts.ReplicationFactor)
	cleanup := "compact"
	// kadm returns the topic's error as err too. Another instance may
	// have created the topic a moment ago.
	_, err := in.adm.CreateTopic(ctx, 1, rf, map[string]*string{"cleanup.policy": &cleanup}, appstatus.Topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return err
	}
	return nil
}

// status describes the instance now.
func (p *statusPublisher) status(now time.Time) appstatus.Status {
	in := p.in
	a := in.app
	topo, app := a.topo, a.opts.ApplicationID
	s := appstatus.Status{
		App: app, Process: in.process, Endpoint: a.opts.ApplicationServer, State: a.State().String(),
		TimeMs: now.UnixMilli(), IntervalMs: a.opts.StatusInterval.Milliseconds(), Workers: a.opts.NumWorkers,
		Topology: topo.Describe(), Topics: map[string]string{}, Changelogs: map[string]string{},
	}
	for _, sub := range append(topo.SubTopologies(), topo.Global()) {
		if sub == nil {
			continue
		}
		for _, t := range append(sub.SourceTopics(), sub.SinkTopics()...) {
			if full := topo.TopicName(app, t); full != t {
				s.Topics[t] = full
			}
		}
	}
	for _, name := range topo.StoreNames() {
		if spec, _ := topo.Store(name); spec.Logging {
			s.Changelogs[name] = topology.ChangelogTopic(app, name)
		}
	}

	vals := p.gather()
	secs := now.Sub(p.at).Seconds()
	p.at = now
	next := map[string]taskCount{}
	task := func(id string) appstatus.Task {
		v := vals[id]
		if v == nil {
			v = &taskValues{} // no record yet
		}
		t := appstatus.Task{ID: id, Processed: int64(v.processed), Lag: int64(v.lag),
			Restored: int64(v.restored), RestoreRemaining: int64(v.restoreRemain), RestoreRate: v.restoreRate,
			Restoring: v.restoreRemain > 0}
		cur := taskCount{processed: int64(v.processed), latencySum: v.latencySum, latency: v.latencyCount}
		prev := p.last[id]
		if secs > 0 && cur.processed >= prev.processed {
			t.RecordsPerSec = float64(cur.processed-prev.processed) / secs
		}
		if n := cur.latency - prev.latency; n > 0 {
			t.LatencyMs = (cur.latencySum - prev.latencySum) / n * 1000
		}
		next[id] = cur
		return t
	}
	in.owners.mu.Lock()
	active := maps.Clone(in.owners.active)
	in.owners.mu.Unlock()
	for _, k := range slices.SortedFunc(maps.Keys(active), compareTasks) {
		t := task(k.String())
		t.Worker = active[k]
		s.Tasks = append(s.Tasks, t)
	}
	if in.standby != nil {
		for _, k := range in.standby.standbyTasks() {
			if _, ok := active[k]; ok {
				continue // being taken over
			}
			t := task(k.String())
			t.Standby, t.Worker = true, -1
			s.Tasks = append(s.Tasks, t)
		}
	}
	p.last = next
	return s
}

// taskValues are one task's instruments as last gathered.
type taskValues struct {
	processed, lag, restored, restoreRemain, restoreRate float64
	latencySum, latencyCount                             float64
}

// gather reads the task instruments, by task id.
func (p *statusPublisher) gather() map[string]*taskValues {
	out := map[string]*taskValues{}
	families, err := p.reg.Gather()
	if err != nil {
		p.in.log.Debug("stream: status: gather metrics", "err", err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			id := label(m, "task")
			if id == "" {
				continue
			}
			v := out[id]
			if v == nil {
				v = &taskValues{}
				out[id] = v
			}
			switch f.GetName() {
			case "runnel_stream_records_processed_total":
				v.processed = m.GetCounter().GetValue()
			case "runnel_stream_consumer_lag":
				v.lag = m.GetGauge().GetValue()
			case "runnel_stream_restore_records_total":
				v.restored = m.GetCounter().GetValue()
			case "runnel_stream_restore_remaining_records":
				v.restoreRemain = m.GetGauge().GetValue()
			case "runnel_stream_restore_rate_records_per_second":
				v.restoreRate = m.GetGauge().GetValue()
			case "runnel_stream_end_to_end_latency_seconds":
				v.latencySum, v.latencyCount = m.GetHistogram().GetSampleSum(), float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// standbyTasks returns the standby tasks open now, sorted.
func (u *standbyUpdater) standbyTasks() []taskKey {
	u.taskMu.Lock()
	defer u.taskMu.Unlock()
	return slices.SortedFunc(maps.Keys(u.tasks), compareTasks)
}
