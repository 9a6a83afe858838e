package meta

import (
	"errors"
	"slices"
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
