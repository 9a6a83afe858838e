package runnel

import (
	"testing"
)

// TestStatusGather: the figures a status record reports come from the
// App's task instruments, by the names they are registered under: a
// renamed instrument would leave the console showing zeros.
func TestStatusGather(t *testing.T) {
	m := newPromMetrics("wc")
	m.processed.WithLabelValues("0_1").Add(10)
	m.lag.WithLabelValues("0_1").Set(7)
	m.e2eLatency.WithLabelValues("0_1").Observe(0.02)
	m.e2eLatency.WithLabelValues("0_1").Observe(0.04)
	m.restored.WithLabelValues("1_0").Add(30)
	m.restoreRemain.WithLabelValues("1_0").Set(10)
	m.restoreRate.WithLabelValues("1_0").Set(5)
	p := &statusPublisher{reg: statusRegistry(m)}
	got := p.gather()
	active, restoring := got["0_1"], got["1_0"]
	if active == nil || active.processed != 10 || active.lag != 7 || active.latencyCount != 2 || active.latencySum < 0.059 || active.latencySum > 0.061 {
		t.Errorf("task 0_1: %+v", active)
	}
	if restoring == nil || restoring.restored != 30 || restoring.restoreRemain != 10 || restoring.restoreRate != 5 {
		t.Errorf("task 1_0: %+v", restoring)
	}
}
