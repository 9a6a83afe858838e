package runnel_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/twmb/franz-go/pkg/kgo"
)

// series gathers reg and returns the series of the metric name, by their
// label values joined (application_id first).
func series(t *testing.T, reg *prometheus.Registry, name string) map[string]*dto.Metric {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.Metric{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out[strings.Join(ls, ",")] = m
		}
	}
	return out
}

// value is a counter's or gauge's value.
func value(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

func sum(ms map[string]*dto.Metric) float64 {
	var s float64
	for _, m := range ms {
		s += value(m)
	}
	return s
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, func() (bool, string) { return cond(), what })
}

func startWordCountWith(t *testing.T, addr, dir string, opts ...runnel.AppOption) *runnel.App {
	t.Helper()
	return runApp(t, buildTopology(t, wordCount), nil, append([]runnel.AppOption{runnel.ApplicationID("wc"), runnel.Brokers(addr),
		runnel.StateDir(dir), runnel.CommitInterval(50 * time.Millisecond)}, opts...)...)
}

// TestAppPrometheusMetrics: word count with a Prometheus registry reports
// records processed, commit latency, the lag of every task down to 0, the
// cache hit ratio, and, for an instance started on empty state, restoration.
func TestAppPrometheusMetrics(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 3, "lines", "word-counts")
	cl := newTestClient(t, addr)
	reg := prometheus.NewRegistry()
	app := startWordCountWith(t, addr, t.TempDir(), runnel.MetricsRegisterer(reg))
	lines := wordCountLines(7, 300)
	produceLines(t, cl, 0, lines)
	waitCounts(t, addr, countWords(lines))

	if got := sum(series(t, reg, "runnel_stream_records_processed_total")); got < float64(len(lines)) {
		t.Fatalf("records processed %v, want at least %d", got, len(lines))
	}
	waitFor(t, "a commit after the output", func() bool {
		h := series(t, reg, "runnel_stream_commit_latency_seconds")["application_id=wc"]
		return h != nil && h.GetHistogram().GetSampleCount() > 0
	})
	if pl := series(t, reg, "runnel_stream_process_latency_seconds"); len(pl) != 6 {
		t.Fatalf("process latency for %d tasks, want 6", len(pl))
	}
	// Every task's lag reaches 0, the repartition topic's transaction
	// markers included.
	waitFor(t, "the lag of all 6 tasks to reach 0", func() bool {
		lag := series(t, reg, "runnel_stream_consumer_lag")
		return len(lag) == 6 && sum(lag) == 0
	})
	if r := series(t, reg, "runnel_stream_cache_hit_ratio"); len(r) != 3 {
		t.Fatalf("cache hit ratio for %d tasks, want the 3 counting ones", len(r))
	}
	if s := series(t, reg, "runnel_stream_state")["application_id=wc,state=RUNNING"]; s == nil || value(s) != 1 {
		t.Fatalf("state gauge %v", s)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(series(t, reg, "runnel_stream_records_processed_total")); n != 0 {
		t.Fatalf("%d series left registered after Close", n)
	}

	// A new instance on empty state restores the counts' changelog.
	reg2 := prometheus.NewRegistry()
	var logs lockedBuffer
	app2 := startWordCountWith(t, addr, t.TempDir(), runnel.MetricsRegisterer(reg2),
		runnel.Logger(slog.New(slog.NewTextHandler(&logs, nil))))
	more := wordCountLines(8, 50)
	produceLines(t, cl, len(lines), more)
	waitCounts(t, addr, countWords(append(append([]string{}, lines...), more...)))
	restored := sum(series(t, reg2, "runnel_stream_restore_records_total"))
	if restored == 0 || restored != float64(app2.Metrics().RecordsRestored) {
		t.Fatalf("restore records %v, snapshot %d", restored, app2.Metrics().RecordsRestored)
	}
	if rem := series(t, reg2, "runnel_stream_restore_remaining_records"); len(rem) != 3 || sum(rem) != 0 {
		t.Fatalf("restore remaining %d series, sum %v; want 3 at 0", len(rem), sum(rem))
	}
	if rate := sum(series(t, reg2, "runnel_stream_restore_rate_records_per_second")); rate <= 0 {
		t.Fatalf("restore rate %v", rate)
	}
	if err := app2.Close(); err != nil {
		t.Fatal(err)
	}
	// Each restoring task logs its start and its end.
	out := logs.String()
	if n := strings.Count(out, `msg="stream: restored"`); n != 3 || !strings.Contains(out, "records_per_second=") {
		t.Fatalf("%d restoration end lines, want 3; log:\n%s", n, out)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestAppDroppedLateRecords: a record later than its window's grace is
// dropped and counted, in the snapshot and in Prometheus.
func TestAppDroppedLateRecords(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 1, "clicks", "per-second")
	b := stream.NewBuilder()
	clicks := stream.From(b, "clicks", serde.String, serde.String).GroupByKey()
	stream.WindowedBy(clicks, stream.Tumbling(time.Second, 0)).Count(stream.Materialized("clicks-per-second")).
		ToStream().To("per-second", stream.WithSerdes(stream.WindowedSerde(serde.String), serde.Int64))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	app, err := runnel.NewApp(topo, runnel.ApplicationID("late"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()),
		runnel.MetricsRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	var recs []*kgo.Record
	for _, ts := range []int64{10_000, 12_500, 3_000, 12_600} { // 3,000 is past its window's end and grace
		recs = append(recs, &kgo.Record{Topic: "clicks", Key: []byte("u"), Value: []byte("click"), Timestamp: time.UnixMilli(ts)})
	}
	if err := newTestClient(t, addr).ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the 4 records to be processed", func() bool { return app.Metrics().RecordsProcessed == 4 })
	if d := app.Metrics().DroppedRecords; d != 1 {
		t.Fatalf("dropped %d, want 1", d)
	}
	late := series(t, reg, "runnel_stream_dropped_records_total")["application_id=late,reason=late,task=0_0"]
	if late == nil || value(late) != 1 {
		t.Fatalf("dropped late records metric %v", late)
	}
}
