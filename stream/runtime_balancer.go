package stream

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// taskBalancer is the application's kgo.GroupBalancer. It assigns tasks,
// not partitions: task (sub-topology s, partition p) is every source topic
// of s at partition p, and all of them go to one member, so co-partitioned
// topics are processed together. kgo's built-in balancers assign topic
// partitions independently and cannot promise that.
//
// Tasks are dealt round-robin to the members in the order kgo sorts them,
// sub-topology by sub-topology, so each member gets a balanced share of
// every sub-topology. The protocol is eager: every rebalance revokes
// everything. Not yet done: stickiness (preferring the member holding a
// task's state) and cooperative rebalancing.
type taskBalancer struct {
	subs [][]string        // full source topic names of each sub-topology, sorted
	info func() memberInfo // what this member says about itself when joining
}

var _ kgo.GroupBalancer = (*taskBalancer)(nil)

func (*taskBalancer) ProtocolName() string { return "runnel-tasks" }
func (*taskBalancer) IsCooperative() bool  { return false }

func (b *taskBalancer) JoinGroupMetadata(interests []string, _ map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 0
	meta.Topics = interests
	meta.Generation = generation
	meta.UserData = encodeInfo(b.info())
	return meta.AppendTo(nil)
}

func (*taskBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b *taskBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	return cb, cb.MemberTopics(), err
}

// Balance implements kgo.ConsumerBalancerBalance.
func (b *taskBalancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	plan := cb.NewPlan()
	members := cb.Members()
	if len(members) == 0 {
		return plan
	}
	next := 0
	for _, sub := range b.subs {
		tasks := int32(0)
		for _, t := range sub {
			tasks = max(tasks, topics[t])
		}
		for p := range tasks {
			m := &members[next%len(members)]
			next++
			for _, t := range sub {
				if p < topics[t] {
					plan.AddPartition(m, t, p)
				}
			}
		}
	}
	return plan
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
	slices.SortFunc(out, func(a, b taskKey) int {
		if a.sub != b.sub {
			return a.sub - b.sub
		}
		return int(a.part - b.part)
	})
	return out
}

// taskKey is a task's sub-topology and partition.
type taskKey struct {
	sub  int
	part int32
}
