package meta

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// opsState is a state with brokers 1-3 and topic "t" whose partition 0
// has replicas reps, all in the ISR, led by the first.
func opsState(t *testing.T, reps ...int32) *state {
	t.Helper()
	s := newState()
	for id := int32(1); id <= 3; id++ {
		if err := s.apply(&command{Op: opRegisterBroker, Broker: &Broker{ID: id}}); err != nil {
			t.Fatal(err)
		}
	}
	p := Partition{Leader: reps[0], LeaderEpoch: 1, Replicas: reps, ISR: slices.Clone(reps)}
	if err := s.apply(&command{Op: opCreateTopic, Topic: &Topic{Name: "t", ID: [16]byte{1}, Partitions: []Partition{p}}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func part(s *state) Partition { return s.Topics["t"].Partitions[0] }

func TestControlledShutdownMovesLeadership(t *testing.T) {
	s := opsState(t, 1, 2, 3)
	if err := s.apply(&command{Op: opControlledShutdown, BrokerID: 1}); err != nil {
		t.Fatal(err)
	}
	p := part(s)
	if p.Leader != 2 || p.LeaderEpoch != 2 || !slices.Equal(p.ISR, []int32{2, 3}) {
		t.Fatalf("after controlled shutdown of the leader: %+v", p)
	}
	if b := s.Brokers[1]; !b.Fenced || !b.ShuttingDown {
		t.Fatalf("broker 1: %+v", b)
	}
	// Registering again (the restarted broker) clears the shutdown.
	if err := s.apply(&command{Op: opRegisterBroker, Broker: &Broker{ID: 1}}); err != nil {
		t.Fatal(err)
	}
	if b := s.Brokers[1]; b.Fenced || b.ShuttingDown {
		t.Fatalf("broker 1 registered again: %+v", b)
	}
	if err := s.apply(&command{Op: opControlledShutdown, BrokerID: 9}); !errors.Is(err, ErrUnknownBroker) {
		t.Fatalf("unknown broker: %v", err)
	}
}

// A broker that registers from a new process leads what it led at a new
// leader epoch, so its followers truncate to its log, which it may have
// come back with less of; registering again from the same process, and
// a partition with no follower, change nothing.
func TestRestartedLeaderMovesToNewEpoch(t *testing.T) {
	s := opsState(t, 1, 2, 3)
	one := Partition{Index: 0, Leader: 1, LeaderEpoch: 4, Replicas: []int32{1}, ISR: []int32{1}}
	if err := s.apply(&command{Op: opCreateTopic, Topic: &Topic{Name: "one", ID: [16]byte{2}, Partitions: []Partition{one}}}); err != nil {
		t.Fatal(err)
	}
	register := func(id int32, inc byte) {
		t.Helper()
		if err := s.apply(&command{Op: opRegisterBroker, Broker: &Broker{ID: id, Incarnation: [16]byte{inc}}}); err != nil {
			t.Fatal(err)
		}
	}
	register(1, 1) // opsState registered it with none: a restart
	before := part(s)
	if before.Leader != 1 || before.LeaderEpoch != 2 || before.PartitionEpoch != 1 {
		t.Fatalf("after broker 1's first incarnation: %+v", before)
	}
	register(1, 1) // the same process again (a heartbeat's re-registration)
	if p := part(s); p.LeaderEpoch != before.LeaderEpoch || p.PartitionEpoch != before.PartitionEpoch {
		t.Fatalf("the same incarnation again: %+v, was %+v", p, before)
	}
	register(2, 7) // a follower restarts: the leader's epoch stays
	if p := part(s); p.LeaderEpoch != before.LeaderEpoch {
		t.Fatalf("a follower restarted: %+v, was %+v", p, before)
	}
	register(1, 2)
	p := part(s)
	if p.Leader != 1 || p.LeaderEpoch != before.LeaderEpoch+1 || p.PartitionEpoch != before.PartitionEpoch+1 || !slices.Equal(p.ISR, before.ISR) {
		t.Fatalf("the leader restarted: %+v, was %+v", p, before)
	}
	if o := s.Topics["one"].Partitions[0]; o.LeaderEpoch != one.LeaderEpoch || o.Leader != 1 {
		t.Fatalf("a partition of one replica: %+v, was %+v", o, one)
	}
}

func TestElectionRules(t *testing.T) {
	s := opsState(t, 1, 2, 3)
	live := s.live
	// The preferred replica leads already.
	if _, err := electionOutcome(part(s), ElectPreferred, live); !errors.Is(err, ErrElectionNotNeeded) {
		t.Fatalf("preferred leading: %v", err)
	}
	if _, err := electionOutcome(part(s), ElectUnclean, live); !errors.Is(err, ErrElectionNotNeeded) {
		t.Fatalf("unclean with a live leader: %v", err)
	}
	// Broker 1 goes, comes back but is not in the ISR yet.
	s.apply(&command{Op: opFenceBroker, BrokerID: 1})
	s.apply(&command{Op: opUnfenceBroker, BrokerID: 1})
	if _, err := electionOutcome(part(s), ElectPreferred, live); !errors.Is(err, ErrPreferredLeaderNotAvailable) {
		t.Fatalf("preferred out of the ISR: %v", err)
	}
	// Back in the ISR: the election moves leadership to it.
	p := part(s)
	s.apply(&command{Op: opAlterPartition, Change: &PartitionChange{Topic: "t", TopicID: [16]byte{1}, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: []int32{2, 3, 1}}})
	s.apply(&command{Op: opElectLeaders, Election: &Election{Type: ElectPreferred, Partitions: []PartitionRef{{"t", 0}}}})
	if np := part(s); np.Leader != 1 || np.LeaderEpoch != p.LeaderEpoch+1 {
		t.Fatalf("after preferred election: %+v (before %+v)", np, p)
	}

	// Unclean: the whole ISR is gone, another replica is live.
	s = opsState(t, 1, 2)
	s.apply(&command{Op: opFenceBroker, BrokerID: 2})
	s.apply(&command{Op: opFenceBroker, BrokerID: 1}) // last ISR member: stays in it
	s.apply(&command{Op: opUnfenceBroker, BrokerID: 2})
	if p := part(s); p.Leader != -1 || !slices.Equal(p.ISR, []int32{1}) {
		t.Fatalf("offline partition: %+v", p)
	}
	if _, err := electionOutcome(part(s), ElectPreferred, s.live); !errors.Is(err, ErrPreferredLeaderNotAvailable) {
		t.Fatalf("preferred fenced: %v", err)
	}
	s.apply(&command{Op: opElectLeaders, Election: &Election{Type: ElectUnclean, Partitions: []PartitionRef{{"t", 0}}}})
	if p := part(s); p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) {
		t.Fatalf("after unclean election: %+v", p)
	}
	s.apply(&command{Op: opFenceBroker, BrokerID: 2})
	if _, err := electionOutcome(part(s), ElectUnclean, s.live); !errors.Is(err, ErrEligibleLeadersNotAvailable) {
		t.Fatalf("nothing live: %v", err)
	}
}

// alterISR asks, as the partition's leader, for isr.
func alterISR(t *testing.T, s *state, isr ...int32) {
	t.Helper()
	p := part(s)
	if err := s.apply(&command{Op: opAlterPartition, Change: &PartitionChange{Topic: "t", TopicID: [16]byte{1}, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: isr}}); err != nil {
		t.Fatal(err)
	}
}

func TestReassignment(t *testing.T) {
	s := opsState(t, 1, 2)
	if err := s.apply(&command{Op: opReassign, Reassign: &Reassignment{Topic: "t", Replicas: []int32{2, 3}}}); err != nil {
		t.Fatal(err)
	}
	p := part(s)
	if !slices.Equal(p.Replicas, []int32{2, 3, 1}) || !slices.Equal(p.AddingReplicas, []int32{3}) || !slices.Equal(p.RemovingReplicas, []int32{1}) || p.Leader != 1 {
		t.Fatalf("reassignment started: %+v", p)
	}
	// The new replica joins the ISR: the reassignment completes, and
	// the leader, being removed, hands over to a target replica.
	alterISR(t, s, 1, 2, 3)
	p = part(s)
	if !slices.Equal(p.Replicas, []int32{2, 3}) || !slices.Equal(p.ISR, []int32{2, 3}) || p.Reassigning() || p.Leader != 2 || p.LeaderEpoch != 2 {
		t.Fatalf("reassignment completed: %+v", p)
	}

	// Cancel before completion puts the original replicas back.
	s = opsState(t, 1, 2)
	s.apply(&command{Op: opReassign, Reassign: &Reassignment{Topic: "t", Replicas: []int32{3, 2}}})
	if err := s.apply(&command{Op: opReassign, Reassign: &Reassignment{Topic: "t"}}); err != nil {
		t.Fatal(err)
	}
	// As in Kafka, the original replicas come back in the order of the
	// merged list (target first).
	if p := part(s); !slices.Equal(p.Replicas, []int32{2, 1}) || !slices.Equal(p.ISR, []int32{1, 2}) || p.Reassigning() || p.Leader != 1 {
		t.Fatalf("cancelled: %+v", p)
	}
	if err := s.apply(&command{Op: opReassign, Reassign: &Reassignment{Topic: "t"}}); !errors.Is(err, ErrNoReassignmentInProgress) {
		t.Fatalf("cancel without a reassignment: %v", err)
	}
	// A pure removal completes at once.
	if err := s.apply(&command{Op: opReassign, Reassign: &Reassignment{Topic: "t", Replicas: []int32{2}}}); err != nil {
		t.Fatal(err)
	}
	if p := part(s); !slices.Equal(p.Replicas, []int32{2}) || p.Leader != 2 || p.Reassigning() {
		t.Fatalf("removal: %+v", p)
	}
	for _, bad := range [][]int32{{}, {2, 2}, {7}} {
		if err := s.apply(&command{Op: opReassign, Reassign: &Reassignment{Topic: "t", Replicas: bad}}); !errors.Is(err, ErrInvalidReplicaAssignment) {
			t.Fatalf("target %v: %v", bad, err)
		}
	}
	if err := s.apply(&command{Op: opReassign, Reassign: &Reassignment{Topic: "t", Index: 3, Replicas: []int32{1}}}); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("unknown partition: %v", err)
	}
}

func TestImbalanced(t *testing.T) {
	s := opsState(t, 1, 2, 3)
	cl := s.view(1, 1)
	if got := imbalanced(cl, 10); len(got) != 0 {
		t.Fatalf("balanced cluster: %v", got)
	}
	s.apply(&command{Op: opControlledShutdown, BrokerID: 1})
	if got := imbalanced(s.view(2, 1), 10); len(got) != 0 {
		t.Fatalf("preferred replica fenced: %v", got)
	}
	s.apply(&command{Op: opRegisterBroker, Broker: &Broker{ID: 1}})
	if got := imbalanced(s.view(3, 1), 10); len(got) != 0 {
		t.Fatalf("preferred replica out of the ISR: %v", got)
	}
	alterISR(t, s, 2, 3, 1)
	if got := imbalanced(s.view(4, 1), 10); !slices.Equal(got, []PartitionRef{{"t", 0}}) {
		t.Fatalf("preferred replica back in the ISR: %v", got)
	}
}

// Random sequences of the operators' commands mixed with fencing,
// registration and ISR changes keep the partition's invariants: the ISR
// is a non-empty subset of the replicas, a leader is in the ISR, the
// epochs never go back, a reassignment's adding and removing replicas
// are replicas and do not overlap, and a completed one leaves exactly
// its target.
func TestOperationsRandomized(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for run := range 500 {
		s := opsState(t, 1, 2)
		for id := int32(4); id <= 5; id++ {
			s.apply(&command{Op: opRegisterBroker, Broker: &Broker{ID: id}})
		}
		var log []string
		prev := part(s)
		for step := range 60 {
			var c *command
			switch r.IntN(7) {
			case 0:
				c = &command{Op: opFenceBroker, BrokerID: 1 + r.Int32N(5)}
			case 1:
				c = &command{Op: opRegisterBroker, Broker: &Broker{ID: 1 + r.Int32N(5)}}
			case 2:
				c = &command{Op: opControlledShutdown, BrokerID: 1 + r.Int32N(5)}
			case 3:
				c = &command{Op: opElectLeaders, Election: &Election{Type: ElectionType(r.IntN(2)), Partitions: []PartitionRef{{"t", 0}}}}
			case 4:
				var target []int32
				if r.IntN(5) > 0 {
					for _, id := range r.Perm(5)[:1+r.IntN(3)] {
						target = append(target, int32(id+1))
					}
				}
				c = &command{Op: opReassign, Reassign: &Reassignment{Topic: "t", Replicas: target}}
			default:
				// The leader asks for an ISR: its own plus a random
				// subset of the replicas (as a leader would after
				// followers caught up or fell behind).
				p := part(s)
				if p.Leader < 0 {
					continue
				}
				isr := []int32{p.Leader}
				for _, id := range p.Replicas {
					if id != p.Leader && r.IntN(2) == 0 {
						isr = append(isr, id)
					}
				}
				c = &command{Op: opAlterPartition, Change: &PartitionChange{Topic: "t", TopicID: [16]byte{1}, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: isr}}
			}
			err := s.apply(c)
			p := part(s)
			log = append(log, fmt.Sprintf("%d: %s %+v %+v %+v -> %v %+v", step, c.Op, c.Reassign, c.Election, c.BrokerID, err, p))
			fail := func(why string) {
				t.Fatalf("run %d: %s\n%s", run, why, strings.Join(log, "\n"))
			}
			if len(p.ISR) == 0 {
				fail("empty ISR")
			}
			for _, id := range p.ISR {
				if !slices.Contains(p.Replicas, id) {
					fail("ISR member not a replica")
				}
			}
			if p.Leader >= 0 && !slices.Contains(p.ISR, p.Leader) {
				fail("leader not in the ISR")
			}
			if p.LeaderEpoch < prev.LeaderEpoch || p.PartitionEpoch < prev.PartitionEpoch {
				fail("an epoch went back")
			}
			if p.Leader != prev.Leader && p.LeaderEpoch == prev.LeaderEpoch {
				fail("the leader changed without a new leader epoch")
			}
			for _, id := range p.AddingReplicas {
				if !slices.Contains(p.Replicas, id) || slices.Contains(p.RemovingReplicas, id) {
					fail("adding replica not a replica, or also removed")
				}
			}
			for _, id := range p.RemovingReplicas {
				if !slices.Contains(p.Replicas, id) {
					fail("removing replica not a replica")
				}
			}
			if c.Op == opReassign && err == nil && c.Reassign.Replicas != nil && !p.Reassigning() && !sameSet(p.Replicas, c.Reassign.Replicas) {
				fail("a completed reassignment left other replicas than its target")
			}
			prev = p
		}
	}
}

func sameSet(a, b []int32) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(x int32) bool { return !slices.Contains(b, x) })
}
