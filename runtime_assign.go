package runnel

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
	bySub := map[int][]taskKey{}
	var subs []int
	for _, t := range in.tasks {
		if bySub[t.sub] == nil {
			subs = append(subs, t.sub)
		}
		bySub[t.sub] = append(bySub[t.sub], t)
	}
	total := newQuota(len(in.tasks), n)
	owner := map[taskKey]int{}
	// Sub-topology by sub-topology, so that each one's tasks are spread
	// too: a member running all the stateless tasks while another runs
	// all the stateful ones would be balanced by count only.
	for _, s := range subs {
		tasks := bySub[s]
		sub := newQuota(len(tasks), n)
		valid := map[taskKey]bool{}
		for _, t := range tasks {
			valid[t] = true
		}
		give := func(i int, t taskKey) {
			sub.take(i)
			total.take(i)
			owner[t] = i
			out.active[in.members[i].id] = append(out.active[in.members[i].id], t)
		}
		// Sticky pass: owners keep their tasks while they have room. A
		// task two members claim (a member that missed a rebalance) stays
		// with the first; the cooperative adjustment revokes it from the
		// other.
		for i, m := range in.members {
			owned := slices.Clone(m.owned)
			sortTasks(owned)
			for _, t := range owned {
				if _, taken := owner[t]; !taken && valid[t] && sub.room(i) && total.room(i) {
					give(i, t)
				}
			}
		}
		// State pass: the rest go where their state is, else to the
		// least loaded member. Tasks whose state is best kept somewhere
		// choose first, so that a task with no state anywhere does not
		// take the room of one that has.
		var rest []taskKey
		best := map[taskKey]int64{}
		for _, t := range tasks {
			if _, ok := owner[t]; ok {
				continue
			}
			rest = append(rest, t)
			best[t] = -1
			for i := range in.members {
				best[t] = max(best[t], score(i, t))
			}
		}
		slices.SortStableFunc(rest, func(a, b taskKey) int { return cmp.Compare(best[b], best[a]) })
		for _, t := range rest {
			pick := func(strict bool) int {
				chosen := -1
				for i := range in.members {
					if !total.room(i) || (strict && !sub.room(i)) {
						continue
					}
					if chosen < 0 || cmp.Or(
						cmp.Compare(score(i, t), score(chosen, t)),
						cmp.Compare(total.load[chosen], total.load[i]),
						cmp.Compare(sub.load[chosen], sub.load[i]),
					) > 0 {
						chosen = i
					}
				}
				return chosen
			}
			i := pick(true)
			if i < 0 {
				// Where this sub-topology has room the overall quota is
				// full: the overall balance comes first.
				i = pick(false)
			}
			give(i, t)
		}
	}
	if in.standbys <= 0 {
		return out
	}
	load := slices.Clone(total.load) // active and standby tasks per member
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
				if best < 0 || cmp.Or(cmp.Compare(score(i, t), score(best, t)), cmp.Compare(load[best], load[i])) > 0 {
					best = i
				}
			}
			if best < 0 {
				break // fewer processes than replicas
			}
			used[in.members[best].process] = true
			load[best]++
			id := in.members[best].id
			out.standby[id] = append(out.standby[id], t)
		}
	}
	return out
}

// quota spreads tasks over members: lo each, and rem of them one more.
type quota struct {
	lo, rem, atHi int
	load          []int
}

func newQuota(tasks, members int) *quota {
	return &quota{lo: tasks / members, rem: tasks % members, load: make([]int, members)}
}

func (q *quota) room(i int) bool {
	return q.load[i] < q.lo || (q.load[i] == q.lo && q.atHi < q.rem)
}

func (q *quota) take(i int) {
	if q.load[i] == q.lo {
		q.atHi++
	}
	q.load[i]++
}
