package runnel

import (
	"testing"
	"time"

	"github.com/runnel-dev/runnel/topology"
)

// TestRecordLatencySampled: every record processed counts, in the App's
// snapshot and in the task's Prometheus counter, and the first record of
// each batch and then one in latencySampleEvery are observed in the
// latency histograms, with their own times.
func TestRecordLatencySampled(t *testing.T) {
	m := &appMetrics{prom: newPromMetrics("app")}
	task := m.forTask(topology.TaskID{SubTopology: 0, Partition: 1})
	const n = 2*latencySampleEvery + 1 + 2
	ts := time.Now().Add(-time.Hour) // an hour-old record: its end-to-end latency is about an hour
	task.startBatch()
	for range n - 2 {
		task.recordProcessed(task.startRecord(), ts)
	}
	// Two batches of one record, as a task that gets few sees them.
	for range 2 {
		task.startBatch()
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
	if got.latencyCount != 5 {
		t.Errorf("end-to-end latency observed %v times for %d records, want 5 (records 1, %d and %d of the first batch, and each of two batches of one)",
			got.latencyCount, n, latencySampleEvery+1, 2*latencySampleEvery+1)
	}
	if mean := got.latencySum / got.latencyCount; mean < 3600 || mean > 3660 {
		t.Errorf("mean end-to-end latency %vs, want about 3600", mean)
	}
}
