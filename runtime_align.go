package runnel

import (
	"math"
	"slices"
	"time"

	"github.com/runnel-dev/runnel/topology"
)

// Source alignment: the tasks that read an application's input topics
// and feed a later stage through topics (repartition topics, or topics
// the topology reads back) advance together in event time.
//
// A later stage sees the records of every upstream task interleaved in
// the order they were written, and its stream time is the highest
// timestamp it has seen. When one upstream task runs ahead of another in
// event time, the other's records reach the later stage behind its stream
// time, and a window or windowed join drops them once they are later than
// its grace. Live, every task reads near the end of its partition and the
// tasks stay close. Reprocessing a backlog they do not: each turn
// processes what each partition's fetch brought, and a fetch's worth of
// a topic with few records per second of event time (Nexmark's persons)
// spans far more event time than one of a busy topic (its bids). Kafka
// Streams has this problem, and drops; Flink calls the remedy watermark
// alignment.
//
// So a worker keeps the source tasks of a pipeline (an alignment group:
// the sub-topologies that read no topic the topology writes, joined when
// records flow from them to a common later stage) within MaxSourceDrift
// of one another: a task takes no record whose timestamp is beyond the
// group's frontier, the earliest event time any of its tasks may still
// process, plus the drift. A task's frontier is the earliest of its
// partitions': the head of a queue that holds records; for a partition
// with nothing queued that may have records to fetch (see
// inputPartition.behind), the timestamp of the last record taken from it
// (or none yet: the group waits for its first fetch); a partition at its
// end does not hold anyone. Waiting for a partition behind is bounded as
// a task's own wait is (maxHoldBehind), so a partition that cannot be
// fetched slows its group and never stops it.
//
// Groups span one worker's tasks; with several workers (NumWorkers) or
// instances, each worker aligns the tasks it runs.

// alignGroups returns, by sub-topology, its alignment group, or -1 for a
// sub-topology that is not aligned: one that reads a topic the topology
// writes, or whose records reach no other sub-topology.
func alignGroups(topo *topology.Topology) []int {
	subs := topo.SubTopologies()
	parent := make([]int, len(subs)) // union-find over sub-topology ids
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	readers := map[string][]int{} // topic -> sub-topologies reading it
	for _, s := range subs {
		for _, topic := range s.SourceTopics() {
			readers[topic] = append(readers[topic], s.ID())
		}
	}
	source := make([]bool, len(subs)) // reads only topics no sub-topology writes
	feeds := make([]bool, len(subs))  // writes a topic another one reads
	for i := range source {
		source[i] = true
	}
	for _, s := range subs {
		for _, topic := range s.SinkTopics() {
			for _, d := range readers[topic] {
				source[d] = false
				if d != s.ID() {
					feeds[s.ID()] = true
				}
				parent[find(s.ID())] = find(d)
			}
		}
	}
	out := make([]int, len(subs))
	for i := range out {
		out[i] = -1
		if source[i] && feeds[i] {
			out[i] = find(i)
		}
	}
	return out
}

// aligner holds a worker's alignment state, loop goroutine only.
type aligner struct {
	drift time.Duration // MaxSourceDrift; negative: no alignment
	// limits are the latest timestamps each group may process this pass,
	// by group (a root sub-topology id); holdSince is when a partition
	// with nothing queued began to set a group's frontier.
	limits    map[int]int64
	holdSince map[int]time.Time
	// waiting says, by group, that the group's frontier is a partition
	// with nothing queued; update's scratch, kept to reuse.
	waiting map[int]bool
}

func newAligner(drift time.Duration) *aligner {
	return &aligner{drift: drift, limits: map[int]int64{}, holdSince: map[int]time.Time{}, waiting: map[int]bool{}}
}

// limiting reports whether the last update limited any group.
func (a *aligner) limiting() bool { return a.drift >= 0 && len(a.limits) > 0 }

// holds reports whether task t's next record waits for its group: it is
// timestamped past the group's limit. Such a task is not stalled (see
// checkStalls): the group's slowest task moves, and it moves next.
func (a *aligner) holds(t *runTask) bool {
	ts, empty, ok := t.in.frontier()
	return ok && !empty && ts > a.limit(t)
}

// limit returns the latest timestamp task t may process this pass.
func (a *aligner) limit(t *runTask) int64 {
	if a.drift < 0 || t.align < 0 {
		return math.MaxInt64
	}
	if l, ok := a.limits[t.align]; ok {
		return l
	}
	return math.MaxInt64
}

// update computes the groups' limits from the tasks' frontiers at now;
// starting are the groups of tasks assigned to the worker that do not run
// yet (their stores restoring, or their partitions' positions not yet
// known), which hold their groups as a partition not yet fetched does;
// behind bounds how long a partition with nothing queued, or a task
// starting, may hold its group back.
func (a *aligner) update(tasks map[taskKey]*runTask, starting []int, now time.Time, behind time.Duration) {
	if a.drift < 0 {
		return
	}
	clear(a.limits)
	clear(a.waiting)
	waiting := a.waiting
	for _, g := range starting {
		a.limits[g], waiting[g] = math.MinInt64, true
	}
	for _, t := range tasks {
		if t.align < 0 {
			continue
		}
		ts, empty, ok := t.in.frontier()
		if !ok {
			continue
		}
		if l, seen := a.limits[t.align]; !seen || ts < l || (ts == l && empty) {
			a.limits[t.align] = ts
			waiting[t.align] = empty
		}
	}
	for g, front := range a.limits {
		if !waiting[g] {
			delete(a.holdSince, g)
		} else if since, ok := a.holdSince[g]; !ok {
			a.holdSince[g] = now
		} else if now.Sub(since) >= behind {
			// Held long enough: stop waiting for the group's empty
			// partitions until a fetch tells of them, and align on
			// the others.
			delete(a.holdSince, g)
			for _, t := range tasks {
				if t.align == g {
					t.in.giveUpEmpty()
				}
			}
			a.update(tasks, slices.DeleteFunc(starting, func(s int) bool { return s == g }), now, behind)
			return
		}
		if front > math.MaxInt64-a.drift.Milliseconds() {
			a.limits[g] = math.MaxInt64
		} else {
			a.limits[g] = front + a.drift.Milliseconds()
		}
	}
	for g := range a.holdSince {
		if _, ok := a.limits[g]; !ok {
			delete(a.holdSince, g)
		}
	}
}
