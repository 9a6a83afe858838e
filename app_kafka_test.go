package runnel_test

import (
	"testing"

	"github.com/runnel-dev/runnel"
)

// TestAppOnApacheKafka: the suite's topologies, run on Apache Kafka 4.x
// with runnel.Brokers under both guarantees, give the outputs they give on
// Runnel's broker (and the reference outputs).
func TestAppOnApacheKafka(t *testing.T) {
	kafka := kafkaPeerAddr(t)
	runnelAddr := startAppBroker(t)
	for _, g := range []runnel.Guarantee{runnel.ExactlyOnce, runnel.AtLeastOnce} {
		t.Run(g.String(), func(t *testing.T) {
			prefix := map[runnel.Guarantee]string{runnel.ExactlyOnce: "eos-", runnel.AtLeastOnce: "alo-"}[g]
			var onRunnel, onKafka map[string]suiteOutput
			t.Run("runnel", func(t *testing.T) { onRunnel = runSuite(t, runnelAddr, g, prefix) })
			t.Run("kafka", func(t *testing.T) { onKafka = runSuite(t, kafka, g, prefix) })
			if t.Failed() {
				return
			}
			compareSuites(t, "Apache Kafka vs Runnel", onRunnel, onKafka)
		})
	}
}
