package stream

import (
	"cmp"
	"slices"
)

// This file holds the task assignment algorithm, free of the group
// protocol so it can be tested alone. runtime_balancer.go feeds it.

// assignMember is one group member as the assignor sees it.
type assignMember struct {
	id      string // member id
	process string // members of one process share their state
	owned   []taskKey
}

// assignInput is everything the assignor decides on.
type assignInput struct {
	members []assignMember // in a stable order (kgo sorts them by instance id, then member id)
	tasks   []taskKey      // every task of the application, sorted
	// state maps a process to the tasks it holds state for, with the sum of
	// the task's changelog positions, or caughtUp.
	state    map[string]map[taskKey]int64
	standbys int // standby replicas wanted per task
	// stateful says whether a task has state to keep warm; stateless
	// tasks get no standbys.
	stateful func(taskKey) bool
}

// assignment is the assignor's answer, by member id.
type assignment struct {
	active  map[string][]taskKey
	standby map[string][]taskKey
}

// assignTasks deals the tasks to the members so that:
//   - every task has exactly one active member, and the counts differ by at
//     most one between members;
//   - a task stays with the member running it when balance allows
//     (stickiness: its state is there and warm);
//   - a task that must move, or has no owner, goes to a member of the
//     process with the most of its state (caught up first, then the highest
//     changelog positions), so it restores the least;
//   - each stateful task gets up to `standbys` standby members, each in a
//     process other than the active's and than each other's, preferring
//     processes that already hold the state, then the least loaded.
//
// It is deterministic: the same input gives the same answer on any leader.
func assignTasks(in assignInput) assignment {
	out := assignment{active: map[string][]taskKey{}, standby: map[string][]taskKey{}}
	n := len(in.members)
	if n == 0 {
		return out
	}
	valid := map[taskKey]bool{}
	for _, t := range in.tasks {
		valid[t] = true
	}
	// Capacity: lo tasks each, and rem members may take one more.
	lo, rem := len(in.tasks)/n, len(in.tasks)%n
	load := make([]int, n)
	atHi := 0
	hasRoom := func(i int) bool {
		if load[i] < lo {
			return true
		}
		return load[i] == lo && atHi < rem
	}
	owner := map[taskKey]int{}
	give := func(i int, t taskKey) {
		if load[i] == lo {
			atHi++
		}
		load[i]++
		owner[t] = i
		out.active[in.members[i].id] = append(out.active[in.members[i].id], t)
	}
	// Sticky pass: owners keep their tasks while they have room. A task
	// two members claim (a member that missed a rebalance) stays with the
	// first; the cooperative adjustment revokes it from the other.
	for i, m := range in.members {
		owned := slices.Clone(m.owned)
		sortTasks(owned)
		for _, t := range owned {
			if _, taken := owner[t]; !taken && valid[t] && hasRoom(i) {
				give(i, t)
			}
		}
	}
	score := func(i int, t taskKey) int64 {
		s, ok := in.state[in.members[i].process][t]
		switch {
		case !ok:
			return -1
		case s == caughtUp:
			return 1<<62 - 1
		}
		return s
	}
	// State pass: the rest go where their state is, else to the least
	// loaded member.
	for _, t := range in.tasks {
		if _, ok := owner[t]; ok {
			continue
		}
		best := -1
		for i := range in.members {
			if !hasRoom(i) {
				continue
			}
			if best < 0 || cmp.Or(cmp.Compare(score(i, t), score(best, t)), cmp.Compare(load[best], load[i])) > 0 {
				best = i
			}
		}
		give(best, t)
	}
	if in.standbys <= 0 {
		return out
	}
	total := slices.Clone(load) // active and standby tasks per member
	for _, t := range in.tasks {
		if in.stateful != nil && !in.stateful(t) {
			continue
		}
		used := map[string]bool{in.members[owner[t]].process: true}
		for range in.standbys {
			best := -1
			for i, m := range in.members {
				if used[m.process] {
					continue
				}
				if best < 0 || cmp.Or(cmp.Compare(score(i, t), score(best, t)), cmp.Compare(total[best], total[i])) > 0 {
					best = i
				}
			}
			if best < 0 {
				break // fewer processes than replicas
			}
			used[in.members[best].process] = true
			total[best]++
			id := in.members[best].id
			out.standby[id] = append(out.standby[id], t)
		}
	}
	return out
}
