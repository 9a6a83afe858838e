package broker

import (
	"context"
	"maps"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A broker leads only at epochs of metadata that holds its own
// registration, this process's incarnation. A view from before it (a
// restarted broker's, replayed from its Raft log while the registration
// is still on its way) may name an epoch the broker led in its earlier
// run, with a log it may have come back with less of; the registration
// moves the partition to a new epoch, at which it leads.
func TestNoLeadershipBeforeOwnRegistration(t *testing.T) {
	b := startTestBroker(t, t.TempDir())
	defer b.Close()
	const topic = "incarnation"
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close() // before the broker
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	p := waitPartition(t, b, topic)
	self := b.cfg.NodeID
	cur := b.meta.Cluster()
	mt := cur.Topics[topic]
	mp := mt.Partitions[0]
	if mp.Leader != self || !p.isLeader() {
		t.Fatalf("partition not led by broker %d: %+v", self, mp)
	}

	// The same partition at a later epoch, led by this broker, in a view
	// whose registration of it is another process's.
	stale := *cur
	stale.Brokers = maps.Clone(cur.Brokers)
	reg := stale.Brokers[self]
	reg.Incarnation[0] ^= 0xff
	stale.Brokers[self] = reg
	mp.LeaderEpoch++
	tp := topicPartition{topic, 0}
	if err := b.parts.applyRole(tp, p, mt, mp, &stale); err != nil {
		t.Fatal(err)
	}
	if p.isLeader() {
		t.Fatalf("broker leads at epoch %d of a view without its registration", mp.LeaderEpoch)
	}
	if got := p.epoch(); got != mp.LeaderEpoch {
		t.Fatalf("partition at epoch %d, want %d (followers are fenced below it)", got, mp.LeaderEpoch)
	}

	// Its registration applied, with the epoch moved on: it leads.
	mp.LeaderEpoch++
	if err := b.parts.applyRole(tp, p, mt, mp, cur); err != nil {
		t.Fatal(err)
	}
	if !p.isLeader() || p.epoch() != mp.LeaderEpoch {
		t.Fatalf("broker does not lead at epoch %d of a view with its registration (leading %v at %d)", mp.LeaderEpoch, p.isLeader(), p.epoch())
	}
}
