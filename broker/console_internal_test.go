package broker

import (
	"testing"

	"github.com/runnel-dev/runnel/console"
)

// traffic reads the byte counters by topic for the console's charts.
func TestConsoleTraffic(t *testing.T) {
	b := &Broker{metrics: newMetrics()}
	b.metrics.bytesIn.WithLabelValues("a").Add(100)
	b.metrics.bytesIn.WithLabelValues("b").Add(7)
	b.metrics.bytesOut.WithLabelValues("a").Add(250)
	got := b.traffic()
	want := map[string]console.Traffic{"a": {In: 100, Out: 250}, "b": {In: 7}}
	if len(got) != len(want) || got["a"] != want["a"] || got["b"] != want["b"] {
		t.Fatalf("traffic %v, want %v", got, want)
	}
}
