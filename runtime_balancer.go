package runnel

import (
	"slices"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// taskBalancer is the application's kgo.GroupBalancer. It assigns tasks,
// not partitions: task (sub-topology s, partition p) is every source topic
// of s at partition p, and all of them go to one member, so co-partitioned
// topics are processed together. kgo's built-in balancers assign topic
// partitions independently and cannot promise that.
//
// The protocol is cooperative: a rebalance revokes only the tasks that
// move, and only after their owner let go of them is a task given to its
// new member (kgo's AdjustCooperative), so unaffected tasks keep running.
// Which member gets what is assignTasks': sticky, state-aware, with
// standby replicas, which travel in the assignment's UserData.
//
// One taskBalancer serves one worker's client: JoinGroupMetadata describes
// that worker, ParseSyncAssignment hands its standbys over.
type taskBalancer struct {
	subs     [][]string        // full source topic names of each sub-topology, sorted
	stateful []bool            // by sub-topology: has logged stores
	standbys int               // standby replicas per stateful task
	info     func() memberInfo // what this member says about itself when joining

	mu       sync.Mutex
	assigned []taskKey // standby tasks of the last assignment received
}

var _ kgo.GroupBalancer = (*taskBalancer)(nil)

func (*taskBalancer) ProtocolName() string { return "runnel-tasks" }
func (*taskBalancer) IsCooperative() bool  { return true }

func (b *taskBalancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3 // OwnedPartitions (v1) and Generation (v2) are needed for cooperative rebalancing
	meta.Topics = interests
	meta.Generation = generation
	for topic, parts := range current {
		o := kmsg.NewConsumerMemberMetadataOwnedPartition()
		o.Topic, o.Partitions = topic, slices.Sorted(slices.Values(parts))
		meta.OwnedPartitions = append(meta.OwnedPartitions, o)
	}
	sort.Slice(meta.OwnedPartitions, func(i, j int) bool { return meta.OwnedPartitions[i].Topic < meta.OwnedPartitions[j].Topic })
	meta.UserData = encodeInfo(b.info())
	return meta.AppendTo(nil)
}

func (b *taskBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(assignment); err != nil {
		return nil, err
	}
	info, err := decodeAssignmentInfo(a.UserData)
	if err != nil {
		return nil, err
	}
	var standbys []taskKey
	for _, s := range info.Standbys {
		k, err := parseTaskKey(s)
		if err != nil {
			return nil, err
		}
		standbys = append(standbys, k)
	}
	b.mu.Lock()
	b.assigned = standbys
	b.mu.Unlock()
	m := make(map[string][]int32, len(a.Topics))
	for _, t := range a.Topics {
		m[t.Topic] = append(m[t.Topic], t.Partitions...)
	}
	return m, nil
}

// standbyTasks returns the standby tasks of the last assignment received.
func (b *taskBalancer) standbyTasks() []taskKey {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.assigned)
}

func (b *taskBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	return cb, cb.MemberTopics(), err
}

// Balance implements kgo.ConsumerBalancerBalance.
func (b *taskBalancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	in := assignInput{state: map[string]map[taskKey]int64{}, standbys: b.standbys}
	in.stateful = func(k taskKey) bool { return k.sub < len(b.stateful) && b.stateful[k.sub] }
	for s, sub := range b.subs {
		n := int32(0)
		for _, t := range sub {
			n = max(n, topics[t])
		}
		for p := range n {
			in.tasks = append(in.tasks, taskKey{s, p})
		}
	}
	members := map[string]*kmsg.JoinGroupResponseMember{}
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		members[m.MemberID] = m
		am := assignMember{id: m.MemberID, process: m.MemberID}
		if info, err := decodeMemberInfo(meta.UserData); err == nil && info.Process != "" {
			am.process = info.Process
			st := in.state[info.Process]
			if st == nil {
				st = map[taskKey]int64{}
				in.state[info.Process] = st
			}
			for id, pos := range info.State {
				k, err := parseTaskKey(id)
				if err != nil {
					continue
				}
				if old, ok := st[k]; !ok || pos == caughtUp || (old != caughtUp && pos > old) {
					st[k] = pos
				}
			}
		}
		owned := map[string][]int32{}
		for _, o := range meta.OwnedPartitions {
			owned[o.Topic] = o.Partitions
		}
		am.owned = b.tasksOf(owned)
		in.members = append(in.members, am)
	})
	out := assignTasks(in)
	plan := cb.NewPlan()
	for id, tasks := range out.active {
		for _, k := range tasks {
			for _, t := range b.subs[k.sub] {
				if k.part < topics[t] {
					plan.AddPartition(members[id], t, k.part)
				}
			}
		}
	}
	plan.AdjustCooperative(cb)
	return &taskPlan{plan: plan, standby: out.standby}
}

// tasksOf returns the tasks whose partitions a member owns: all of a
// task's partitions, or some of them (a task whose topics differ in
// partition count).
func (b *taskBalancer) tasksOf(owned map[string][]int32) []taskKey {
	var out []taskKey
	seen := map[taskKey]bool{}
	for s, sub := range b.subs {
		for _, t := range sub {
			for _, p := range owned[t] {
				k := taskKey{s, p}
				if !seen[k] {
					seen[k] = true
					out = append(out, k)
				}
			}
		}
	}
	sortTasks(out)
	return out
}

// taskPlan is a balance plan with each member's standby tasks.
type taskPlan struct {
	plan    *kgo.BalancePlan
	standby map[string][]taskKey
}

func (p *taskPlan) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	var out []kmsg.SyncGroupRequestGroupAssignment
	for member, topics := range p.plan.AsMemberIDMap() {
		var a kmsg.ConsumerMemberAssignment
		for topic, parts := range topics {
			at := kmsg.NewConsumerMemberAssignmentTopic()
			at.Topic, at.Partitions = topic, slices.Sorted(slices.Values(parts))
			a.Topics = append(a.Topics, at)
		}
		sort.Slice(a.Topics, func(i, j int) bool { return a.Topics[i].Topic < a.Topics[j].Topic })
		info := assignmentInfo{Version: memberInfoVersion}
		for _, k := range p.standby[member] {
			info.Standbys = append(info.Standbys, k.String())
		}
		a.UserData = encodeInfo(info)
		sa := kmsg.NewSyncGroupRequestGroupAssignment()
		sa.MemberID = member
		sa.MemberAssignment = a.AppendTo(nil)
		out = append(out, sa)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MemberID < out[j].MemberID })
	return out
}

// tasksOf turns an assignment of topic partitions into task ids, given the
// sub-topologies reading each topic.
func tasksOf(assigned map[string][]int32, routes map[string][]int) []taskKey {
	seen := map[taskKey]bool{}
	for topic, parts := range assigned {
		for _, sub := range routes[topic] {
			for _, p := range parts {
				seen[taskKey{sub, p}] = true
			}
		}
	}
	out := make([]taskKey, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sortTasks(out)
	return out
}

// taskKey is a task's sub-topology and partition.
type taskKey struct {
	sub  int
	part int32
}
