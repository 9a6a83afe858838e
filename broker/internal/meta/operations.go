package meta

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// The operators' commands, as a Kafka cluster has them:
//
//   - controlled shutdown: a stopping broker asks the controller to move
//     its leaderships away and take it out of every ISR before it stops,
//     so clients move to the new leaders while it still answers them
//     (NOT_LEADER_OR_FOLLOWER) rather than after a session timeout;
//   - leader elections on request (Kafka's ElectLeaders): the preferred
//     replica, the first of the replica list, takes the lead back once it
//     is in the ISR; an unclean election gives a leaderless partition any
//     live replica. auto.leader.rebalance.enable runs the preferred
//     election by itself (rebalance.go);
//   - reassignment (Kafka's AlterPartitionReassignments): the replica
//     list becomes the target plus the replicas being removed; the new
//     replicas fetch from the leader and join the ISR like any follower,
//     and once every target replica is in the ISR the reassignment
//     completes (completeReassignment): the replica list becomes the
//     target, the removed replicas leave the ISR, and the leader moves to
//     a target replica if it was being removed.
//
// Every rule is checked again when the command applies, so the outcome is
// the same on every node whatever changed between proposal and commit.

// Errors of the operators' commands.
var (
	// ErrElectionNotNeeded: the partition already has the leader the
	// election would give it.
	ErrElectionNotNeeded = errors.New("meta: election not needed")
	// ErrPreferredLeaderNotAvailable: the preferred replica is fenced or
	// not in the ISR.
	ErrPreferredLeaderNotAvailable = errors.New("meta: preferred leader not available")
	// ErrEligibleLeadersNotAvailable: no live replica may lead.
	ErrEligibleLeadersNotAvailable = errors.New("meta: no eligible leader available")
	// ErrInvalidReplicaAssignment: a reassignment target that is empty,
	// names a broker twice or names an unknown broker.
	ErrInvalidReplicaAssignment = errors.New("meta: invalid replica assignment")
	// ErrNoReassignmentInProgress: a cancel of a partition not being
	// reassigned.
	ErrNoReassignmentInProgress = errors.New("meta: no reassignment in progress")
)

const (
	opControlledShutdown = "controlled-shutdown"
	opElectLeaders       = "elect-leaders"
	opReassign           = "reassign-partition"
)

// applyOperation applies the commands of this file.
func (s *state) applyOperation(c *command) error {
	switch c.Op {
	case opControlledShutdown:
		b, ok := s.Brokers[c.BrokerID]
		if !ok {
			return fmt.Errorf("%w: %d", ErrUnknownBroker, c.BrokerID)
		}
		b.ShuttingDown = true
		s.Brokers[c.BrokerID] = b
		// As a fencing: out of every ISR it is not the last member of,
		// and its leaderships go to other ISR members.
		return s.fence(c.BrokerID)
	case opElectLeaders:
		if c.Election == nil {
			return errors.New("meta: elect-leaders without an election")
		}
		s.elect(c.Election)
		return nil
	case opReassign:
		if c.Reassign == nil {
			return errors.New("meta: reassign-partition without a reassignment")
		}
		return s.reassign(c.Reassign)
	}
	return fmt.Errorf("meta: unknown command %q", c.Op)
}

// ControlledShutdown moves broker id's leaderships to other ISR members
// and takes it out of the ISRs (as fencing does), and keeps it fenced
// while it still heartbeats, until it registers again. It returns once
// the change is applied on this node. The controller role, if this node
// has it, is not handed over: raft's leadership transfer followed by a
// shutdown was seen to hang the node's raft, and the other voters elect a
// controller within an election timeout once it stops.
func (s *Store) ControlledShutdown(ctx context.Context, id int32) error {
	return s.propose(ctx, &command{Op: opControlledShutdown, BrokerID: id})
}

// ElectionType is an ElectLeaders election type, with Kafka's values.
type ElectionType int8

// The election types.
const (
	// ElectPreferred makes the preferred replica (the first in the
	// replica list) the leader if it is live and in the ISR.
	ElectPreferred ElectionType = 0
	// ElectUnclean gives a partition without a live leader one: from
	// the ISR if any member is live, otherwise any live replica.
	ElectUnclean ElectionType = 1
)

// PartitionRef names a partition.
type PartitionRef struct {
	Topic string `json:"topic"`
	Index int32  `json:"index"`
}

// Election is an elect-leaders command.
type Election struct {
	Type       ElectionType   `json:"type"`
	Partitions []PartitionRef `json:"partitions"`
}

// electionOutcome applies an election's rules to one partition: the
// partition with its new leader, or why there is none.
func electionOutcome(p Partition, typ ElectionType, live func(int32) bool) (Partition, error) {
	switch typ {
	case ElectPreferred:
		pref := p.Replicas[0]
		if p.Leader == pref {
			return p, ErrElectionNotNeeded
		}
		if !live(pref) || !slices.Contains(p.ISR, pref) {
			return p, fmt.Errorf("%w: replica %d is fenced or out of the ISR %v", ErrPreferredLeaderNotAvailable, pref, p.ISR)
		}
		np := clonePartition(p)
		np.Leader = pref
		np.LeaderEpoch++
		np.PartitionEpoch++
		return np, nil
	case ElectUnclean:
		if p.Leader >= 0 && live(p.Leader) {
			return p, ErrElectionNotNeeded
		}
		np, changed := ElectLeader(p, live, true)
		if !changed || np.Leader < 0 {
			return p, fmt.Errorf("%w: no replica of %v is live", ErrEligibleLeadersNotAvailable, p.Replicas)
		}
		return np, nil
	}
	return p, fmt.Errorf("meta: unknown election type %d", typ)
}

func (s *state) live(id int32) bool {
	b, ok := s.Brokers[id]
	return ok && !b.Fenced
}

// elect applies an election to every partition it names that its rules
// still allow.
func (s *state) elect(e *Election) {
	for _, ref := range e.Partitions {
		t := s.Topics[ref.Topic]
		if t == nil || ref.Index < 0 || int(ref.Index) >= len(t.Partitions) {
			continue
		}
		np, err := electionOutcome(t.Partitions[ref.Index], e.Type, s.live)
		if err != nil {
			continue
		}
		nt := cloneTopic(t)
		nt.Partitions[ref.Index] = np
		s.Topics[ref.Topic] = nt
	}
}

// ElectLeaders runs an election on the named partitions, or on every
// partition when parts is nil, and returns each partition's outcome: nil
// for a new leader, else ErrUnknownTopic, ErrElectionNotNeeded,
// ErrPreferredLeaderNotAvailable or ErrEligibleLeadersNotAvailable. As
// Kafka's controller does, an election of every partition leaves out the
// partitions that did not need one.
func (s *Store) ElectLeaders(ctx context.Context, typ ElectionType, parts []PartitionRef) (map[PartitionRef]error, error) {
	if typ != ElectPreferred && typ != ElectUnclean {
		return nil, fmt.Errorf("meta: unknown election type %d", typ)
	}
	cl := s.Cluster()
	all := parts == nil
	if all {
		for _, name := range slices.Sorted(maps.Keys(cl.Topics)) {
			for _, p := range cl.Topics[name].Partitions {
				parts = append(parts, PartitionRef{name, p.Index})
			}
		}
	}
	live := func(id int32) bool { b, ok := cl.Brokers[id]; return ok && !b.Fenced }
	out := make(map[PartitionRef]error, len(parts))
	var elect []PartitionRef
	for _, ref := range parts {
		t := cl.Topics[ref.Topic]
		if t == nil || ref.Index < 0 || int(ref.Index) >= len(t.Partitions) {
			out[ref] = fmt.Errorf("%w: %s-%d", ErrUnknownTopic, ref.Topic, ref.Index)
			continue
		}
		_, err := electionOutcome(t.Partitions[ref.Index], typ, live)
		switch {
		case errors.Is(err, ErrElectionNotNeeded) && all:
		case err != nil:
			out[ref] = err
		default:
			elect = append(elect, ref)
		}
	}
	if len(elect) == 0 {
		return out, nil
	}
	if err := s.propose(ctx, &command{Op: opElectLeaders, Election: &Election{Type: typ, Partitions: elect}}); err != nil {
		return nil, err
	}
	// What applied is what the state shows now: the command skipped a
	// partition whose state changed since it was read.
	cl = s.Cluster()
	for _, ref := range elect {
		t := cl.Topics[ref.Topic]
		switch {
		case t == nil || int(ref.Index) >= len(t.Partitions):
			out[ref] = fmt.Errorf("%w: %s-%d", ErrUnknownTopic, ref.Topic, ref.Index)
		case typ == ElectPreferred && t.Partitions[ref.Index].Leader != t.Partitions[ref.Index].Replicas[0]:
			out[ref] = fmt.Errorf("%w: the partition changed during the election", ErrPreferredLeaderNotAvailable)
		case typ == ElectUnclean && t.Partitions[ref.Index].Leader < 0:
			out[ref] = fmt.Errorf("%w: the partition changed during the election", ErrEligibleLeadersNotAvailable)
		default:
			out[ref] = nil
		}
	}
	return out, nil
}

// Reassignment asks for a partition's replicas to become Replicas (the
// first is the preferred leader); nil Replicas cancels the reassignment
// in progress.
type Reassignment struct {
	Topic    string  `json:"topic"`
	Index    int32   `json:"index"`
	Replicas []int32 `json:"replicas"`
}

// Reassigning reports whether a reassignment of p is in progress.
func (p Partition) Reassigning() bool {
	return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
}

// OriginalReplicas are the replicas p had before its reassignment began
// (its replicas when none is in progress).
func (p Partition) OriginalReplicas() []int32 {
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.AddingReplicas, r) })
}

// TargetReplicas are the replicas p will have once its reassignment
// completes (its replicas when none is in progress).
func (p Partition) TargetReplicas() []int32 {
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.RemovingReplicas, r) })
}

// Reassign starts, replaces or (with nil replicas) cancels a partition's
// reassignment. It fails with ErrUnknownTopic, ErrInvalidReplicaAssignment
// or, for a cancel, ErrNoReassignmentInProgress.
func (s *Store) Reassign(ctx context.Context, r Reassignment) error {
	return s.propose(ctx, &command{Op: opReassign, Reassign: &r})
}

// reassign applies a reassignment. A new one replaces one in progress:
// its target is measured against the original replicas.
func (s *state) reassign(r *Reassignment) error {
	t := s.Topics[r.Topic]
	if t == nil || r.Index < 0 || int(r.Index) >= len(t.Partitions) {
		return fmt.Errorf("%w: %s-%d", ErrUnknownTopic, r.Topic, r.Index)
	}
	p := t.Partitions[r.Index]
	orig := p.OriginalReplicas()
	target := r.Replicas
	if target == nil {
		if !p.Reassigning() {
			return fmt.Errorf("%w: %s-%d", ErrNoReassignmentInProgress, r.Topic, r.Index)
		}
		target = orig
	}
	if len(target) == 0 {
		return fmt.Errorf("%w: %s-%d: no replicas", ErrInvalidReplicaAssignment, r.Topic, r.Index)
	}
	for i, id := range target {
		if _, ok := s.Brokers[id]; !ok {
			return fmt.Errorf("%w: %s-%d: broker %d is not registered", ErrInvalidReplicaAssignment, r.Topic, r.Index, id)
		}
		if slices.Contains(target[:i], id) {
			return fmt.Errorf("%w: %s-%d: broker %d named twice", ErrInvalidReplicaAssignment, r.Topic, r.Index, id)
		}
	}
	np := clonePartition(p)
	np.AddingReplicas, np.RemovingReplicas = nil, nil
	np.Replicas = slices.Clone(target)
	for _, id := range target {
		if !slices.Contains(orig, id) {
			np.AddingReplicas = append(np.AddingReplicas, id)
		}
	}
	for _, id := range orig {
		if !slices.Contains(target, id) {
			np.RemovingReplicas = append(np.RemovingReplicas, id)
			np.Replicas = append(np.Replicas, id)
		}
	}
	// A cancel drops the replicas that were being added, ISR members or
	// not; the leader too if one of them had come to lead.
	np.ISR = slices.DeleteFunc(np.ISR, func(id int32) bool { return !slices.Contains(np.Replicas, id) })
	if len(np.ISR) == 0 {
		return fmt.Errorf("%w: %s-%d: no in-sync replica would be left", ErrInvalidReplicaAssignment, r.Topic, r.Index)
	}
	np.PartitionEpoch++
	if np.Leader >= 0 && !slices.Contains(np.Replicas, np.Leader) {
		s.moveLeader(&np)
	}
	nt := cloneTopic(t)
	nt.Partitions[r.Index] = np
	s.Topics[r.Topic] = nt
	s.completeReassignment(r.Topic, r.Index)
	return nil
}

// moveLeader gives np a new leader: the first replica, in replica order,
// that is in the ISR and live, or none (-1). The leader epoch grows.
func (s *state) moveLeader(np *Partition) {
	np.Leader = -1
	for _, id := range np.Replicas {
		if slices.Contains(np.ISR, id) && s.live(id) {
			np.Leader = id
			break
		}
	}
	np.LeaderEpoch++
}

// completeReassignment ends the partition's reassignment once every
// target replica is in the ISR: the removed replicas leave the replica
// list and the ISR, and a leader among them hands over to a target
// replica. Called after every change that may complete one.
func (s *state) completeReassignment(topic string, index int32) {
	t := s.Topics[topic]
	if t == nil || int(index) >= len(t.Partitions) || !t.Partitions[index].Reassigning() {
		return
	}
	p := t.Partitions[index]
	target := p.TargetReplicas()
	for _, id := range target {
		if !slices.Contains(p.ISR, id) {
			return
		}
	}
	np := clonePartition(p)
	np.Replicas = target
	np.ISR = slices.DeleteFunc(np.ISR, func(id int32) bool { return !slices.Contains(target, id) })
	np.AddingReplicas, np.RemovingReplicas = nil, nil
	np.PartitionEpoch++
	if !slices.Contains(target, np.Leader) {
		s.moveLeader(&np)
	}
	nt := cloneTopic(t)
	nt.Partitions[index] = np
	s.Topics[topic] = nt
}
