package clustertest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/history"
)

// A Fetch with Kafka's debugging-consumer replica id (-2) reads a
// follower's own copy of a partition up to its log end, as Kafka serves
// it: the fault tests compare the replicas' logs that way. A plain
// consumer's fetch to a follower still gets NOT_LEADER_OR_FOLLOWER.
func TestReplicationDebuggingConsumerReadsFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	c := startCluster(t, 3, 3)
	cl := c.client(kgo.DefaultProduceTopic("dbg"), kgo.RequiredAcks(kgo.AllISRAcks()))
	createReplicated(t, cl, "dbg", "2")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 20
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	leader, _, _ := waitPartitionState(t, kadm.NewClient(cl), "dbg", "a full ISR", func(l int32, isr []int32) bool { return l > 0 && len(isr) == 3 })
	for _, nd := range c.nodes {
		// A follower may be a fetch behind the last acks=all answer.
		var rep history.Replica
		for {
			var err error
			rep, _, err = history.ReadReplica(ctx, nd.listen, nd.id, "dbg", 0)
			if err != nil {
				t.Fatalf("broker %d (leader %d): %v", nd.id, leader, err)
			}
			if len(rep.Records) >= n || ctx.Err() != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(rep.Records) != n {
			t.Fatalf("broker %d (leader %d): read %d records of its copy, want %d", nd.id, leader, len(rep.Records), n)
		}
		for i, r := range rep.Records {
			if r.Offset != int64(i) || r.Value != fmt.Sprintf("v%d", i) {
				t.Fatalf("broker %d: record %d is %+v", nd.id, i, r)
			}
		}
	}
	// A consumer is still sent to the leader.
	follower := leader%3 + 1
	code, err := fetchFrom(ctx, cl, follower, "dbg")
	if err != nil {
		t.Fatal(err)
	}
	if code == 0 {
		t.Fatalf("broker %d, a follower, served a consumer's fetch", follower)
	}
}

// fetchFrom sends a consumer's Fetch of partition 0 to one broker and
// returns the partition's error code.
func fetchFrom(ctx context.Context, cl *kgo.Client, node int32, topic string) (int16, error) {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12 // topics by name
	req.ReplicaID = -1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = 1<<20, -1, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(node)))
	if err != nil {
		return 0, err
	}
	return resp.Topics[0].Partitions[0].ErrorCode, nil
}
