// Package clustertest holds the broker's multi-broker tests: replication,
// leader election and failover, the controller quorum, reassignment and
// its throttles, inter-broker security and the registry on a cluster.
// Some clusters run in this process; most run each broker as a separate
// process (the test binary re-executed, see TestMain) that a test can
// SIGKILL. They are a package of their own, apart from the broker's other
// tests, so each package's run stays well inside go test's default
// ten-minute timeout.
package clustertest_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// childEnv names the data directory of a child broker process; the
// others of its environment start with it.
const childEnv = "RUNNEL_TEST_CLUSTER_CHILD"

func TestMain(m *testing.M) {
	code := testutil.RunChildOrTests(m, childEnv, runChildBroker)
	if code == 0 && os.Getenv(childEnv) == "" {
		// Every goroutine an in-process broker started must be gone once
		// the tests closed their brokers and clients.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// runChildBroker runs a cluster node on dir until SIGTERM, printing
// "ADDR host:port" once it listens.
func runChildBroker(dir string) int {
	cfg := broker.Config{DataDir: dir, Listen: os.Getenv(childEnv + "_LISTEN")}
	clusterChildConfig(&cfg)        // replication_test.go
	partitionLimitChildConfig(&cfg) // abuse_partitions_test.go
	return testutil.ServeBroker(cfg)
}

// Shared with the other packages' tests (internal/testutil).
var (
	newClient     = testutil.NewClient
	testContext   = testutil.Context
	firstDiff     = testutil.FirstDiff
	requestCounts = testutil.RequestCounts
	javaTool      = testutil.JavaTool
)

// kafkaHome returns the Apache Kafka directory scripts/fetch-kafka.sh
// fills, and the path of scripts/kafka-tool.sh, or skips the test.
func kafkaHome(t testing.TB) (home, tool string) {
	t.Helper()
	in := testutil.KafkaInstall(t)
	return in.Home, in.Tool
}

// testBatch is an uncompressed RecordBatch of one keyless record per
// value, as producer p sends it.
func testBatch(p recordbatch.Producer, values ...string) []byte {
	recs := make([]recordbatch.Record, len(values))
	for i, v := range values {
		recs[i].Value = []byte(v)
	}
	return recordbatch.Encode(recs, time.Now(), 0, p)
}
