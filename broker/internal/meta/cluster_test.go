package meta

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/freeport"
)

// freeAddrs picks n free loopback addresses.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	out, err := freeport.Addrs(n)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// openQuorum opens three voters concurrently (each waits for a majority).
func openQuorum(t *testing.T, session time.Duration) ([]*Store, []Voter) {
	t.Helper()
	addrs := freeAddrs(t, 3)
	voters := []Voter{{1, addrs[0]}, {2, addrs[1]}, {3, addrs[2]}}
	stores := make([]*Store, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stores[i], errs[i] = Open(ctx, Config{Dir: t.TempDir(), NodeID: int32(i + 1), Quorum: voters, SessionTimeout: session})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open node %d: %v", i+1, err)
		}
	}
	t.Cleanup(func() {
		for _, s := range stores {
			if s != nil {
				s.Close()
			}
		}
	})
	return stores, voters
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A three-voter quorum over TCP: every node can change metadata (a
// non-controller forwards to the controller) and reads its own write; a
// broker that stops heartbeating is fenced and its leaderships move to
// the ISR; it is unfenced when it heartbeats again.
func TestQuorumForwardsAndFences(t *testing.T) {
	stores, _ := openQuorum(t, 3*time.Second)
	id := stores[0].Cluster().ClusterID
	for _, s := range stores {
		if got := s.Cluster().ClusterID; got != id || id == "" {
			t.Fatalf("cluster ids differ: %q vs %q", got, id)
		}
	}
	for i, s := range stores {
		if err := s.RegisterBroker(ctx(t), Broker{ID: int32(i + 1), Host: "127.0.0.1", Port: int32(9000 + i)}); err != nil {
			t.Fatalf("register %d: %v", i+1, err)
		}
	}
	// Heartbeats from every broker, from every node, until the test ends.
	stop := make(chan struct{})
	var paused sync.Map // broker id -> true while it does not beat
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, p := paused.Load(int32(i + 1)); !p {
					s.Heartbeat(context.Background(), int32(i+1))
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	// Create from a node that is not the controller.
	var follower *Store
	ctrl := stores[0].Cluster().ControllerID
	for i, s := range stores {
		if int32(i+1) != ctrl {
			follower = s
			break
		}
	}
	waitFor(t, "every registration applied", func() bool { return len(follower.Cluster().Brokers) == 3 })
	top, err := follower.CreateTopic(ctx(t), TopicSpec{Name: "r", NumPartitions: 3, ReplicationFactor: 3})
	if err != nil {
		t.Fatal(err)
	}
	if follower.Cluster().Topics["r"] == nil {
		t.Fatal("the proposer does not read its own write")
	}
	if _, err := follower.CreateTopic(ctx(t), TopicSpec{Name: "r", NumPartitions: 1, ReplicationFactor: 1}); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("forwarded error lost its kind: %v", err)
	}
	if _, err := follower.CreateTopic(ctx(t), TopicSpec{Name: "big", NumPartitions: 1, ReplicationFactor: 4}); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("RF 4 on 3 brokers: %v", err)
	}
	// Leadership spreads: three partitions, three leaders.
	leaders := map[int32]bool{}
	for _, p := range top.Partitions {
		leaders[p.Leader] = true
	}
	if len(leaders) != 3 {
		t.Fatalf("leaders %v, want all three brokers", top.Partitions)
	}

	victim := top.Partitions[0].Leader
	paused.Store(victim, true)
	waitFor(t, "the silent broker fenced", func() bool { return follower.Cluster().Brokers[victim].Fenced })
	p := follower.Cluster().Topics["r"].Partitions[0]
	if p.Leader == victim || p.Leader < 0 || slices.Contains(p.ISR, victim) || p.LeaderEpoch != top.Partitions[0].LeaderEpoch+1 {
		t.Fatalf("after fencing %d: %+v (was %+v)", victim, p, top.Partitions[0])
	}
	if _, err := follower.CreateTopic(ctx(t), TopicSpec{Name: "three", NumPartitions: 1, ReplicationFactor: 3}); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("RF 3 with 2 live brokers: %v", err)
	}
	paused.Delete(victim)
	waitFor(t, "the broker unfenced", func() bool { return !follower.Cluster().Brokers[victim].Fenced })

	// AlterPartition: epoch-checked.
	p = follower.Cluster().Topics["r"].Partitions[0]
	t0 := follower.Cluster().Topics["r"]
	ch := PartitionChange{Topic: "r", TopicID: t0.ID, Index: 0, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: append(slices.Clone(p.ISR), victim)}
	np, err := follower.AlterPartition(ctx(t), ch)
	if err != nil || len(np.ISR) != 3 || np.PartitionEpoch != p.PartitionEpoch+1 {
		t.Fatalf("expand ISR: %+v %v", np, err)
	}
	if _, err := follower.AlterPartition(ctx(t), ch); !errors.Is(err, ErrStalePartitionEpoch) {
		t.Fatalf("stale partition epoch: %v", err)
	}
	ch.PartitionEpoch = np.PartitionEpoch
	ch.LeaderEpoch--
	if _, err := follower.AlterPartition(ctx(t), ch); !errors.Is(err, ErrFencedLeaderEpoch) {
		t.Fatalf("stale leader epoch: %v", err)
	}
}

// The election rules, on random partitions and liveness: a live leader
// stays; otherwise the new leader is a live ISR member when there is one
// (the first in replica order), any live replica only when unclean
// election is on, else none; epochs only grow; the ISR stays within the
// replicas and holds the leader.
func TestElectLeaderRandomized(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		n := 1 + r.IntN(5)
		replicas := r.Perm(7)[:n]
		var p Partition
		for _, id := range replicas {
			p.Replicas = append(p.Replicas, int32(id))
			if r.IntN(2) == 0 || len(p.ISR) == 0 {
				p.ISR = append(p.ISR, int32(id))
			}
		}
		p.Leader = -1
		if r.IntN(4) > 0 {
			p.Leader = p.ISR[r.IntN(len(p.ISR))]
		}
		p.LeaderEpoch, p.PartitionEpoch = int32(r.IntN(10)), int32(r.IntN(10))
		alive := map[int32]bool{}
		for id := range 7 {
			alive[int32(id)] = r.IntN(3) > 0
		}
		live := func(id int32) bool { return alive[id] }
		unclean := r.IntN(2) == 0
		np, changed := ElectLeader(p, live, unclean)
		desc := fmt.Sprintf("case %d: %+v live %v unclean %v -> %+v", i, p, alive, unclean, np)
		if p.Leader >= 0 && live(p.Leader) {
			if changed {
				t.Fatalf("%s: a live leader was replaced", desc)
			}
			continue
		}
		var want int32 = -1
		for _, id := range p.Replicas {
			if slices.Contains(p.ISR, id) && live(id) {
				want = id
				break
			}
		}
		if want < 0 && unclean {
			for _, id := range p.Replicas {
				if live(id) {
					want = id
					break
				}
			}
		}
		if np.Leader != want {
			t.Fatalf("%s: leader %d, want %d", desc, np.Leader, want)
		}
		if changed != (want != p.Leader) {
			t.Fatalf("%s: changed=%v", desc, changed)
		}
		if changed && (np.LeaderEpoch != p.LeaderEpoch+1 || np.PartitionEpoch != p.PartitionEpoch+1) {
			t.Fatalf("%s: epochs did not grow by one", desc)
		}
		for _, id := range np.ISR {
			if !slices.Contains(np.Replicas, id) {
				t.Fatalf("%s: ISR member %d not a replica", desc, id)
			}
		}
		if np.Leader >= 0 && !slices.Contains(np.ISR, np.Leader) {
			t.Fatalf("%s: leader not in ISR", desc)
		}
		if len(np.ISR) == 0 {
			t.Fatalf("%s: empty ISR", desc)
		}
	}
}

// A node that restarts has applied everything the controller had
// committed before Open returns, not just the first entries of its log:
// a broker acting on a half-replayed view would take topics it has not
// replayed yet for deleted ones.
func TestQuorumRestartCatchesUp(t *testing.T) {
	const session = 5 * time.Second
	stores, voters := openQuorum(t, session)
	for i, s := range stores {
		if err := s.RegisterBroker(ctx(t), Broker{ID: int32(i + 1), Host: "127.0.0.1", Port: int32(9000 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	// The brokers heartbeat as they would, so that none is fenced (and
	// placement left without live brokers) while a slow run, under the
	// race detector, creates the topics.
	beat, stopBeat := context.WithCancel(context.Background())
	var beating sync.WaitGroup
	beating.Add(1)
	go func() {
		defer beating.Done()
		tick := time.NewTicker(session / 10)
		defer tick.Stop()
		for {
			for i, s := range stores {
				_ = s.Heartbeat(beat, int32(i+1)) // a failed beat is retried at the next tick
			}
			select {
			case <-beat.Done():
				return
			case <-tick.C:
			}
		}
	}()
	const topics = 150
	for i := range topics {
		if _, err := stores[0].CreateTopic(ctx(t), TopicSpec{Name: fmt.Sprintf("t%d", i), NumPartitions: 1, ReplicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
	}
	stopBeat()
	beating.Wait()
	// Restart a node that is not the controller.
	i := 0
	for int32(i+1) == stores[0].Cluster().ControllerID {
		i++
	}
	dir := stores[i].cfg.Dir
	stores[i].Close()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(c, Config{Dir: dir, NodeID: int32(i + 1), Quorum: voters, SessionTimeout: session})
	if err != nil {
		t.Fatal(err)
	}
	stores[i] = s
	if got := len(s.Cluster().Topics); got != topics {
		t.Fatalf("Open returned with %d of %d topics applied", got, topics)
	}
}

// With racks, a partition's replicas span as many racks as there are
// (Kafka's rack-aware placement); every broker leads about as many
// partitions as another.
func TestPlaceReplicasRackAware(t *testing.T) {
	brokers := map[int32]Broker{
		1: {ID: 1, Rack: "a"}, 2: {ID: 2, Rack: "a"}, 3: {ID: 3, Rack: "b"},
		4: {ID: 4, Rack: "b"}, 5: {ID: 5, Rack: "c"}, 6: {ID: 6, Rack: "c"},
		7: {ID: 7, Rack: "c", Fenced: true},
	}
	parts, err := placeReplicas(brokers, 0, 12, 3)
	if err != nil {
		t.Fatal(err)
	}
	leads := map[int32]int{}
	for _, p := range parts {
		racks := map[string]bool{}
		for _, r := range p.Replicas {
			if r == 7 {
				t.Fatalf("partition %d placed on fenced broker 7", p.Index)
			}
			racks[brokers[r].Rack] = true
		}
		if len(racks) != 3 {
			t.Fatalf("partition %d on %v spans racks %v", p.Index, p.Replicas, racks)
		}
		leads[p.Leader]++
	}
	for id := int32(1); id <= 6; id++ {
		if leads[id] != 2 {
			t.Fatalf("leaders %v, want two partitions each", leads)
		}
	}
	if _, err := placeReplicas(brokers, 0, 1, 7); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("RF 7 with 6 live brokers: %v", err)
	}
}
