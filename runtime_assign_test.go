package runnel

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func tasksN(subs, parts int) []taskKey {
	var out []taskKey
	for s := range subs {
		for p := range parts {
			out = append(out, taskKey{s, int32(p)})
		}
	}
	return out
}

// checkAssignment checks the invariants every assignment keeps: each task
// active on exactly one member, counts within one of each other, standbys
// never in the active's process nor twice in one process. Within a
// sub-topology the counts may differ by subSlack: the overall balance
// comes first.
func checkAssignment(t *testing.T, in assignInput, out assignment, subSlack int) {
	t.Helper()
	process := map[string]string{}
	for _, m := range in.members {
		process[m.id] = m.process
	}
	active := map[taskKey]string{}
	lo, hi := len(in.tasks), 0
	for _, m := range in.members {
		n := len(out.active[m.id])
		lo, hi = min(lo, n), max(hi, n)
		for _, k := range out.active[m.id] {
			if prev, ok := active[k]; ok {
				t.Fatalf("task %s active on %s and %s", k, prev, m.id)
			}
			active[k] = m.id
		}
	}
	if len(active) != len(in.tasks) {
		t.Fatalf("%d of %d tasks assigned", len(active), len(in.tasks))
	}
	if hi-lo > 1 {
		t.Fatalf("unbalanced: %d to %d tasks per member: %v", lo, hi, out.active)
	}
	// And within each sub-topology.
	subs := map[int]bool{}
	for _, k := range in.tasks {
		subs[k.sub] = true
	}
	for s := range subs {
		lo, hi := len(in.tasks), 0
		for _, m := range in.members {
			n := 0
			for _, k := range out.active[m.id] {
				if k.sub == s {
					n++
				}
			}
			lo, hi = min(lo, n), max(hi, n)
		}
		if hi-lo > subSlack {
			t.Fatalf("sub-topology %d unbalanced: %d to %d tasks per member: %v", s, lo, hi, out.active)
		}
	}
	standbyProcs := map[taskKey]map[string]bool{}
	for id, ks := range out.standby {
		for _, k := range ks {
			p := process[id]
			if p == process[active[k]] {
				t.Fatalf("standby of %s on %s, in the process of its active %s", k, id, active[k])
			}
			if standbyProcs[k] == nil {
				standbyProcs[k] = map[string]bool{}
			}
			if standbyProcs[k][p] {
				t.Fatalf("two standbys of %s in process %s", k, p)
			}
			standbyProcs[k][p] = true
		}
	}
}

func TestAssignTasksBalancedAndSticky(t *testing.T) {
	in := assignInput{tasks: tasksN(2, 6)}
	for i := range 3 {
		in.members = append(in.members, assignMember{id: fmt.Sprint("m", i), process: fmt.Sprint("p", i)})
	}
	first := assignTasks(in)
	checkAssignment(t, in, first, 1)

	// A fourth member joins: the others keep what they run but for what
	// balance makes them give up.
	for i := range in.members {
		in.members[i].owned = first.active[in.members[i].id]
	}
	in.members = append(in.members, assignMember{id: "m3", process: "p3"})
	second := assignTasks(in)
	checkAssignment(t, in, second, 1)
	moved := 0
	for _, m := range in.members[:3] {
		for _, k := range m.owned {
			if !slices.Contains(second.active[m.id], k) {
				moved++
			}
		}
	}
	if moved != 3 {
		t.Fatalf("%d tasks moved when a fourth member joined 12 tasks on 3; want 3", moved)
	}
}

func TestAssignTasksPrefersState(t *testing.T) {
	k := taskKey{0, 1}
	in := assignInput{
		tasks: tasksN(1, 2),
		members: []assignMember{
			{id: "a", process: "pa"},
			{id: "b", process: "pb"},
		},
		state: map[string]map[taskKey]int64{
			"pa": {k: 10},
			"pb": {k: 500}, // more of it: less to restore
		},
	}
	out := assignTasks(in)
	checkAssignment(t, in, out, 1)
	if !slices.Contains(out.active["b"], k) {
		t.Fatalf("task %s went to %v, want b, which holds the most of its state", k, out.active)
	}
	in.state["pa"][k] = caughtUp
	out = assignTasks(in)
	if !slices.Contains(out.active["a"], k) {
		t.Fatalf("task %s went to %v, want a, whose state is caught up", k, out.active)
	}
}

func TestAssignTasksStandbys(t *testing.T) {
	in := assignInput{
		tasks:    tasksN(2, 4),
		standbys: 1,
		stateful: func(k taskKey) bool { return k.sub == 0 },
		members: []assignMember{
			{id: "a0", process: "pa"}, {id: "a1", process: "pa"}, // two workers of one process
			{id: "b0", process: "pb"},
		},
	}
	out := assignTasks(in)
	checkAssignment(t, in, out, 1)
	n := 0
	for _, ks := range out.standby {
		for _, k := range ks {
			if k.sub != 0 {
				t.Fatalf("standby of stateless task %s", k)
			}
			n++
		}
	}
	if n != 4 {
		t.Fatalf("%d standbys, want one for each of the 4 stateful tasks: %v", n, out.standby)
	}
	// One process: nowhere to put a standby.
	in.members = in.members[:2]
	out = assignTasks(in)
	checkAssignment(t, in, out, 1)
	if len(out.standby) != 0 {
		t.Fatalf("standbys %v with a single process", out.standby)
	}
}

// TestAssignTasksRandom checks the invariants over random groups, and that
// the answer does not depend on anything but the input.
func TestAssignTasksRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 500 {
		in := assignInput{tasks: tasksN(1+rng.IntN(3), 1+rng.IntN(12)), standbys: rng.IntN(3)}
		procs := 1 + rng.IntN(4)
		in.state = map[string]map[taskKey]int64{}
		for i := range 1 + rng.IntN(6) {
			p := fmt.Sprint("p", rng.IntN(procs))
			m := assignMember{id: fmt.Sprint("m", i), process: p}
			for _, k := range in.tasks {
				if rng.IntN(3) == 0 {
					m.owned = append(m.owned, k) // claims may overlap
				}
				if rng.IntN(4) == 0 {
					if in.state[p] == nil {
						in.state[p] = map[taskKey]int64{}
					}
					in.state[p][k] = rng.Int64N(1000)
				}
			}
			in.members = append(in.members, m)
		}
		out := assignTasks(in)
		checkAssignment(t, in, out, 2)
		again := assignTasks(in)
		if fmt.Sprint(out) != fmt.Sprint(again) {
			t.Fatalf("two answers for one input:\n%v\n%v", out, again)
		}
	}
}
