package stream_test

import (
	"testing"

	"github.com/runnel-dev/runnel/stream"
)

// TestAppOnApacheKafka: the suite's topologies, run on Apache Kafka 4.x
// with stream.Brokers under both guarantees, give the outputs they give on
// Runnel's broker (and the reference outputs).
func TestAppOnApacheKafka(t *testing.T) {
	kafka := kafkaPeerAddr(t)
	runnel := startAppBroker(t)
	for _, g := range []stream.Guarantee{stream.ExactlyOnce, stream.AtLeastOnce} {
		t.Run(g.String(), func(t *testing.T) {
			prefix := map[stream.Guarantee]string{stream.ExactlyOnce: "eos-", stream.AtLeastOnce: "alo-"}[g]
			var onRunnel, onKafka map[string]suiteOutput
			t.Run("runnel", func(t *testing.T) { onRunnel = runSuite(t, runnel, g, prefix) })
			t.Run("kafka", func(t *testing.T) { onKafka = runSuite(t, kafka, g, prefix) })
			if t.Failed() {
				return
			}
			compareSuites(t, "Apache Kafka vs Runnel", onRunnel, onKafka)
		})
	}
}
