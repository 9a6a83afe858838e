package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// The coordinators follow their partitions' leadership: a broker whose
// __consumer_offsets and __transaction_state partitions move to another
// leader unloads their shards (NOT_COORDINATOR), and loads them again
// from the log when the leadership comes back at a newer epoch, with the
// committed offsets and the transactional id's producer intact. On one
// node nothing moves a leadership, so the test delivers the changes to
// the partitions as reconcile would (role, then place).
func TestCoordinatorsFollowLeadership(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const topic, groupID, txnID = "placed", "placed-group", "placed-txn"
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 42, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(ctx, groupID, offs); err != nil || resp.Error() != nil {
		t.Fatalf("commit offsets: %v %v", err, resp.Error())
	}
	pid, epoch := initProducer(ctx, t, cl, b.cfg.NodeID, txnID)
	if pid < 0 {
		t.Fatalf("InitProducerID before the move: %v", kerr.ErrorForCode(int16(epoch)))
	}

	self := b.cfg.NodeID
	move := func(leader, leaderEpoch int32) {
		t.Helper()
		b.parts.reconcileMu.Lock()
		defer b.parts.reconcileMu.Unlock()
		for _, name := range []string{offsetsTopic, txnStateTopic} {
			p := b.parts.get(name, 0)
			mp := meta.Partition{Index: 0, Leader: leader, LeaderEpoch: leaderEpoch, Replicas: []int32{self}, ISR: []int32{self}}
			if err := p.role(mp, self, 1, time.Minute, time.Now()); err != nil {
				t.Fatal(err)
			}
			b.placement.place(topicPartition{name, 0}, p)
		}
	}

	move(self+1, 1) // another broker leads
	if code := fetchOffsetCode(ctx, t, cl, self, groupID); code != kerr.NotCoordinator.Code {
		t.Errorf("OffsetFetch after the leadership left: %v, want NOT_COORDINATOR", kerr.ErrorForCode(code))
	}
	if got, code := initProducer(ctx, t, cl, self, txnID); got >= 0 || int16(code) != kerr.NotCoordinator.Code {
		t.Errorf("InitProducerID after the leadership left: producer %d, code %v; want NOT_COORDINATOR", got, kerr.ErrorForCode(int16(code)))
	}

	move(self, 2) // back, at a newer epoch: loaded again from the log
	deadline := time.Now().Add(20 * time.Second)
	for {
		code := fetchOffsetCode(ctx, t, cl, self, groupID)
		if code == 0 {
			break
		}
		if code != kerr.CoordinatorLoadInProgress.Code || time.Now().After(deadline) {
			t.Fatalf("OffsetFetch after the leadership came back: %v", kerr.ErrorForCode(code))
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, err := adm.FetchOffsets(ctx, groupID)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := got.Lookup(topic, 0); !ok || o.At != 42 {
		t.Errorf("committed offset after reload: %+v (found %v), want 42", o, ok)
	}
	for {
		npid, nepoch := initProducer(ctx, t, cl, self, txnID)
		if npid >= 0 {
			if npid != pid || nepoch != epoch+1 {
				t.Errorf("InitProducerID after reload: producer %d epoch %d, want %d epoch %d", npid, nepoch, pid, epoch+1)
			}
			break
		}
		if int16(nepoch) != kerr.CoordinatorLoadInProgress.Code || time.Now().After(deadline) {
			t.Fatalf("InitProducerID after the leadership came back: %v", kerr.ErrorForCode(int16(nepoch)))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// initProducer sends InitProducerID for txnID to broker node alone (no
// retry, no coordinator lookup) and returns the producer id and epoch,
// or -1 and the error code.
func initProducer(ctx context.Context, t *testing.T, cl *kgo.Client, node int32, txnID string) (int64, int32) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = &txnID
	req.TransactionTimeoutMillis = 60000
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp, err := cl.Broker(int(node)).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*kmsg.InitProducerIDResponse)
	if r.ErrorCode != 0 {
		return -1, int32(r.ErrorCode)
	}
	return r.ProducerID, int32(r.ProducerEpoch)
}

// fetchOffsetCode sends OffsetFetch for group to broker node alone and
// returns the group's error code.
func fetchOffsetCode(ctx context.Context, t *testing.T, cl *kgo.Client, node int32, group string) int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	req.Groups = append(req.Groups, rg) // v8+ batches groups
	resp, err := cl.Broker(int(node)).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*kmsg.OffsetFetchResponse)
	if len(r.Groups) > 0 {
		return r.Groups[0].ErrorCode
	}
	return r.ErrorCode
}
