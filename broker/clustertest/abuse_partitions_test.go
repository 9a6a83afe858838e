package clustertest_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// maxPartitionsEnv sets max.broker.partitions in child brokers.
const maxPartitionsEnv = childEnv + "_MAX_PARTITIONS"

// partitionLimitChildConfig applies maxPartitionsEnv to a child broker.
func partitionLimitChildConfig(cfg *broker.Config) {
	if n, err := strconv.Atoi(os.Getenv(maxPartitionsEnv)); err == nil {
		cfg.MaxBrokerPartitions = int32(n)
	}
}

// max.broker.partitions on a cluster (KIP-578): each broker's replicas
// count against its own limit, not the cluster's replicas against one
// broker's limit.
func TestAbusePartitionLimitPerBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	const limit = 20
	t.Setenv(maxPartitionsEnv, strconv.Itoa(limit))
	c := startCluster(t, 3, 3)
	cl := c.client()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	held := func() map[int32]int {
		md, err := adm.Metadata(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := make(map[int32]int)
		for _, td := range md.Topics {
			for _, pd := range td.Partitions {
				for _, r := range pd.Replicas {
					out[r]++
				}
			}
		}
		return out
	}
	// The internal topics have three replicas: every broker holds the
	// same number.
	h := held()
	free := limit - h[1]
	if h[2] != h[1] || h[3] != h[1] || free < 10 {
		t.Fatalf("replicas held before the test: %v", h)
	}

	create := func(topic string, partitions int32, assign []int32) int16 {
		t.Helper()
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 30000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
		if assign != nil {
			rt.NumPartitions, rt.ReplicationFactor = -1, -1
			for _, id := range assign {
				ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
				ra.Partition = int32(len(rt.ReplicaAssignment))
				ra.Replicas = []int32{id}
				rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
			}
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].ErrorCode
	}

	// More partitions than one broker may hold, spread over three: each
	// broker takes a third.
	spread := int32(3 * (free - 3))
	if code := create("spread", spread, nil); code != 0 {
		t.Fatalf("%d single-replica partitions over 3 brokers with %d free each: %v", spread, free, kerr.ErrorForCode(code))
	}
	// Broker 1 takes its last 3; then it is full, while the others still
	// have room.
	if code := create("pinned", 0, []int32{1, 1, 1}); code != 0 {
		t.Fatalf("3 partitions on broker 1 with 3 free: %v", kerr.ErrorForCode(code))
	}
	if code := create("more", 0, []int32{1}); code != kerr.PolicyViolation.Code {
		t.Fatalf("a partition on full broker 1: %v, want POLICY_VIOLATION", kerr.ErrorForCode(code))
	}
	if code := create("more", 0, []int32{2}); code != 0 {
		t.Fatalf("a partition on broker 2 with room: %v", kerr.ErrorForCode(code))
	}
	// Every broker's metadata catches up with the controller's.
	testutil.Eventually(t, 30*time.Second, func() (bool, string) {
		h = held()
		return h[1] == limit && h[2] == limit-2 && h[3] == limit-3, fmt.Sprintf("replicas held, as metadata says, are %v, not 20, 18 and 17", h)
	})
}
