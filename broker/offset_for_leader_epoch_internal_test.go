package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// OffsetForLeaderEpoch across a leader epoch bump. Nothing bumps a leader
// epoch on one node (there is no other leader to move to), so the test
// delivers epoch 1 to the partition as a leader change would, through
// update. Epoch 0 then ends where epoch 1 began, epoch 1 at the log end,
// a current epoch of 0 is fenced and one of 2 unknown. The history
// survives a restart (after which metadata, which never saw the bump,
// has the partition lead at 0 again).
func TestOffsetForLeaderEpochAcrossEpochBump(t *testing.T) {
	dir := t.TempDir()
	const topic = "epoch-bump"
	b := startTestBroker(t, dir)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	p := waitPartition(t, b, topic)
	produce := func(n int) {
		t.Helper()
		for i := range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(5) // [0, 5) at epoch 0
	self := b.cfg.NodeID
	if err := p.role(meta.Partition{Leader: self, LeaderEpoch: 1, Replicas: []int32{self}, ISR: []int32{self}}, self, 1, time.Minute, time.Now()); err != nil {
		t.Fatal(err)
	}
	produce(3) // [5, 8) at epoch 1

	query := func(cl *kgo.Client, current, epoch int32) string {
		t.Helper()
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.LeaderEpoch = current, epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
		if err != nil {
			t.Fatal(err)
		}
		r := resp.Topics[0].Partitions[0]
		if r.ErrorCode != 0 {
			return kerr.ErrorForCode(r.ErrorCode).(*kerr.Error).Message
		}
		return fmt.Sprintf("epoch %d end %d", r.LeaderEpoch, r.EndOffset)
	}
	for _, c := range []struct {
		current, epoch int32
		want           string
	}{
		{-1, 0, "epoch 0 end 5"},
		{1, 0, "epoch 0 end 5"},
		{1, 1, "epoch 1 end 8"},
		{1, 2, "epoch -1 end -1"},
		{0, 0, "FENCED_LEADER_EPOCH"},
		{2, 1, "UNKNOWN_LEADER_EPOCH"},
	} {
		if got := query(cl, c.current, c.epoch); got != c.want {
			t.Errorf("current epoch %d, epoch %d: %s, want %s", c.current, c.epoch, got, c.want)
		}
	}

	cl.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = startTestBroker(t, dir)
	defer b.Close()
	cl2, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	waitPartition(t, b, topic)
	for _, c := range []struct {
		epoch int32
		want  string
	}{
		{0, "epoch 0 end 5"},
		{1, "epoch 1 end 8"},
	} {
		if got := query(cl2, -1, c.epoch); got != c.want {
			t.Errorf("after restart, epoch %d: %s, want %s", c.epoch, got, c.want)
		}
	}
}
