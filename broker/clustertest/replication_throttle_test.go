package clustertest_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Replication throttles: the configs kafka-reassign-partitions --throttle
// sets, and a reassignment held to the rate on a three-broker cluster.

const (
	leaderRate       = "leader.replication.throttled.rate"
	followerRate     = "follower.replication.throttled.rate"
	leaderReplicas   = "leader.replication.throttled.replicas"
	followerReplicas = "follower.replication.throttled.replicas"
	noThrottle       = "9223372036854775807"
)

// startInProcessCluster starts three brokers in this process, all voters
// of the controller quorum, edit applied to each one's Config, and
// returns their Kafka addresses and the brokers, by id - 1. They close
// when the test ends.
func startInProcessCluster(t *testing.T, edit func(*broker.Config)) ([]string, []*broker.Broker) {
	t.Helper()
	brokers := testutil.StartCluster(t, 3, func(_ int, cfg *broker.Config) {
		cfg.BrokerSessionTimeout, cfg.BrokerHeartbeatInterval, cfg.ReplicaLagTimeMax = testSessionTimeout, testHeartbeat, testReplicaLag
		if edit != nil {
			edit(cfg)
		}
	})
	return []string{brokers[0].Addr(), brokers[1].Addr(), brokers[2].Addr()}, brokers
}

// produceRandom writes n records of size random (incompressible) bytes to
// topic and waits for every acknowledgement.
func produceRandom(t *testing.T, cl *kgo.Client, topic string, n, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for range n {
		v := make([]byte, size)
		rand.Read(v)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce to %s: %v", topic, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// A reassignment adding broker 3 to three partitions of 6 MiB each, with
// the brokers' replication rates at 1 MiB/s: the partition listed as
// leader-throttled and the one listed as follower-throttled each take at
// least about half of size/rate to catch up (the quota windows let a
// burst through; the bound stays loose for a busy machine), and both
// complete; the partition listed on neither side catches up first, at
// full speed, though it shares the fetcher and the connection. Before
// the rates were accepted, setting them failed and all three moved at
// full speed.
func TestReplicationThrottleReassignment(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	const (
		rate       = 1 << 20
		recordSize = 16 << 10
		records    = 384 // 6 MiB
		size       = recordSize * records
	)
	seeds, brokers := startInProcessCluster(t, func(cfg *broker.Config) {
		cfg.MetricsListen = "127.0.0.1:0"
		// Two windows of a second: a burst of about one second's
		// worth before the rate holds (Kafka's eleven would let ten
		// seconds' worth through, the whole partition).
		cfg.ReplicationQuota = broker.ReplicationQuotaConfig{WindowNum: 2, WindowSize: time.Second}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()

	topics := []string{"by-leader", "by-follower", "unthrottled"}
	for _, topic := range topics {
		createAssigned(t, cl, topic, map[string]string{"min.insync.replicas": "1"}, 1, 2)
		produceRandom(t, cl, topic, records, recordSize)
	}
	// The rates on every broker, as the tool sets them; by-leader lists
	// the current replicas for the leader side only, by-follower the new
	// one for the follower side only.
	for id := int32(1); id <= 3; id++ {
		rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{set(leaderRate, fmt.Sprint(rate)), set(followerRate, fmt.Sprint(rate))}, id)
		if err == nil {
			err = rs[0].Err
		}
		if err != nil {
			t.Fatalf("set broker %d's rates: %v", id, err)
		}
	}
	mustAlterTopic(t, adm, "by-leader", set(leaderReplicas, "0:1,0:2"))
	mustAlterTopic(t, adm, "by-follower", set(followerReplicas, "0:3"))

	var req kadm.AlterPartitionAssignmentsReq
	for _, topic := range topics {
		req.Assign(topic, 0, []int32{1, 2, 3})
	}
	start := time.Now()
	res, err := adm.AlterPartitionAssignments(ctx, req)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("reassign: %v", err)
	}
	took := map[string]time.Duration{}
	testutil.Eventually(t, 150*time.Second, func() (bool, string) {
		for _, topic := range topics {
			if _, ok := took[topic]; ok {
				continue
			}
			st, err := topicState(ctx, adm, topic)
			if err != nil {
				return false, err.Error()
			}
			if p := st[0]; slices.Contains(p.ISR, 3) && len(p.Replicas) == 3 {
				took[topic] = time.Since(start)
			}
		}
		return len(took) == len(topics), fmt.Sprintf("caught up so far: %v", took)
	})
	t.Logf("%d MiB per partition at %d MiB/s: caught up after %v", size>>20, rate>>20, took)
	lower := time.Duration(float64(size) / rate / 2 * float64(time.Second))
	for _, topic := range topics[:2] {
		if took[topic] < lower {
			t.Errorf("%s caught up in %v, less than half of size/rate (%v): not held to the rate", topic, took[topic], lower)
		}
		if took[topic] <= took["unthrottled"] {
			t.Errorf("%s (%v) caught up no later than the unthrottled partition (%v)", topic, took[topic], took["unthrottled"])
		}
	}
	// The metrics count what the throttles counted: broker 1 sent
	// by-leader's log as leader, broker 3 fetched by-follower's.
	for _, m := range []struct {
		b    *broker.Broker
		side string
	}{{brokers[0], "leader"}, {brokers[2], "follower"}} {
		name := `runnel_broker_replication_throttled_bytes_total{side="` + m.side + `"}`
		if got := scrapeGauge(t, m.b.MetricsAddr(), name); got < size {
			t.Errorf("%s on broker %s: %v, want at least %d", name, m.b.MetricsAddr(), got, size)
		}
	}
	if got := scrapeGauge(t, brokers[0].MetricsAddr(), `runnel_broker_replication_throttled_bytes_total{side="follower"}`); got != 0 {
		t.Errorf("broker 1 fetched %v throttled bytes as follower; it follows nothing listed", got)
	}
}
