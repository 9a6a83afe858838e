package runnel

import (
	"testing"
	"time"

	"github.com/runnel-dev/runnel/topology"
)

// TestRecordLatencySampled: every record processed counts, in the App's
// snapshot and in the task's Prometheus counter, and one record in
// latencySampleEvery of each task (its first among them) is observed in
// the latency histograms, with its own times.
func TestRecordLatencySampled(t *testing.T) {
	m := &appMetrics{prom: newPromMetrics("app")}
	task := m.forTask(topology.TaskID{SubTopology: 0, Partition: 1})
	const n = 2*latencySampleEvery + 1
	ts := time.Now().Add(-time.Hour) // an hour-old record: its end-to-end latency is about an hour
	for range n {
		task.recordProcessed(task.startRecord(), ts)
	}
	if got := m.processed.Load(); got != n {
		t.Errorf("snapshot counts %d records, want %d", got, n)
	}
	reg := statusRegistry(m.prom)
	got := (&statusPublisher{reg: reg}).gather()["0_1"]
	if got == nil || got.processed != n {
		t.Fatalf("Prometheus counts %+v, want %d records processed", got, n)
	}
	if got.latencyCount != 3 {
		t.Errorf("end-to-end latency observed %v times for %d records, want 3 (records 1, %d and %d)",
			got.latencyCount, n, latencySampleEvery+1, 2*latencySampleEvery+1)
	}
	if mean := got.latencySum / got.latencyCount; mean < 3600 || mean > 3660 {
		t.Errorf("mean end-to-end latency %vs, want about 3600", mean)
	}
}
