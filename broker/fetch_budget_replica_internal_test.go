package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A follower's fetch is served while consumers hold the whole fetch
// budget: replication must not wait behind slow clients, or the ISR would
// shrink under client load. A consumer's fetch in the same state gets no
// records (it waits for room, then answers empty).
func TestFetchBudgetDoesNotStarveFollowers(t *testing.T) {
	const topic = "budget-follower"
	b := startTestBroker(t, t.TempDir())
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	waitPartition(t, b, topic)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("replicate me")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// Slow readers hold everything.
	held := b.fetchBytes.reserve(b.fetchBytes.total)
	defer b.fetchBytes.release(held)
	if held != b.fetchBytes.total {
		t.Fatalf("reserved %d of %d", held, b.fetchBytes.total)
	}

	fetch := func(replica int32) int {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = replica
		req.ReplicaState.ID = replica
		req.MaxWaitMillis = 200
		req.MinBytes = 1
		req.MaxBytes = 1 << 20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rt.TopicID = b.meta.Cluster().Topics[topic].ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.CurrentLeaderEpoch = -1
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		sp := resp.Topics[0].Partitions[0]
		if sp.ErrorCode != 0 {
			t.Fatalf("replica %d: error code %d", replica, sp.ErrorCode)
		}
		return len(sp.RecordBatches)
	}
	if n := fetch(-1); n != 0 {
		t.Fatalf("a consumer's fetch read %d bytes with the budget exhausted", n)
	}
	if n := fetch(b.cfg.NodeID + 1); n == 0 {
		t.Fatal("a follower's fetch read nothing while consumers held the budget")
	}
}
