package runnel

// This file holds the stall watchdog: a task with input to read whose
// position does not move is reported, so that a stuck pipeline (a
// partition paused and never resumed, a fetch never answered) shows in
// the log and the metrics instead of looking like an idle one.

import (
	"context"
	"time"

	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kadm"
)

// defaultStallTimeout is StallTimeout's default.
const defaultStallTimeout = 60 * time.Second

// stallWatch is the watchdog's state, owned by a worker's loop. It is a
// state machine fed observations with their time, so tests drive it with
// their own clock.
type stallWatch struct {
	timeout time.Duration
	last    time.Time // of the last check
	tasks   map[taskKey]*stallState
}

// stallState is one task's watch.
type stallState struct {
	pos     map[string]int64 // position by "topic-partition", as of since
	since   time.Time        // when pos last moved, or the lag was 0
	stalled bool             // reported stalled and not moved since
}

// stallEvent is a change of a task's stall state.
type stallEvent int

const (
	stallNone     stallEvent = iota
	stallStarted             // the task has just been found stalled
	stallResolved            // a stalled task's position moved, or its lag is 0
)

// checkEvery is how often the loop checks: a few times per timeout, so a
// stall is reported at most a quarter of the timeout late, and no more
// often than every 10 s against the brokers.
func (w *stallWatch) checkEvery() time.Duration {
	return min(w.timeout/4, 10*time.Second)
}

// due reports whether a check is due at now.
func (w *stallWatch) due(now time.Time) bool {
	return w.timeout > 0 && now.Sub(w.last) >= w.checkEvery()
}

// observe records task k's positions and lag at now and returns the
// change of its state.
func (w *stallWatch) observe(k taskKey, now time.Time, pos map[string]int64, lag int64) stallEvent {
	if w.tasks == nil {
		w.tasks = map[taskKey]*stallState{}
	}
	s, ok := w.tasks[k]
	if !ok || lag <= 0 || !samePositions(s.pos, pos) {
		wasStalled := ok && s.stalled
		w.tasks[k] = &stallState{pos: pos, since: now}
		if wasStalled {
			return stallResolved
		}
		return stallNone
	}
	if !s.stalled && now.Sub(s.since) >= w.timeout {
		s.stalled = true
		return stallStarted
	}
	return stallNone
}

// forget drops the tasks not in keep (moved away, or restoring), and
// reports those that were stalled.
func (w *stallWatch) forget(keep func(taskKey) bool) (stalled []taskKey) {
	for k, s := range w.tasks {
		if !keep(k) {
			if s.stalled {
				stalled = append(stalled, k)
			}
			delete(w.tasks, k)
		}
	}
	return stalled
}

func samePositions(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for tp, o := range a {
		if p, ok := b[tp]; !ok || p != o {
			return false
		}
	}
	return true
}

// stallCheckTimeout bounds the end-offset requests of one check.
const stallCheckTimeout = 5 * time.Second

// checkStalls runs the watchdog when a check is due: it reads the running
// tasks' positions (under taskMu), asks the brokers for the ends of their
// input partitions, and reports the tasks that stall or move again.
// Loop goroutine only, taskMu not held.
func (r *runner) checkStalls(ctx context.Context, now time.Time) {
	w := &r.stalls
	if !w.due(now) {
		return
	}
	w.last = now
	type watched struct {
		id   topology.TaskID
		pos  map[string]int64
		tps  map[string][]int32
		held bool // waits for its alignment group (runtime_align.go)
	}
	var tasks []watched
	topics := map[string]bool{}
	committed := r.cl.CommittedOffsets()
	r.taskMu.Lock()
	for k, t := range r.tasks {
		if _, ok := r.restoring[k]; ok {
			continue
		}
		wt := watched{id: t.task.ID(), pos: map[string]int64{}, tps: r.partitionsOf(k), held: r.align.holds(t)}
		for topic, ps := range wt.tps {
			topics[topic] = true
			for _, p := range ps {
				// The position is the offset after the last record
				// fetched, or, before the first fetch, the committed
				// offset; -1: neither, the log start (reset to the
				// earliest offset).
				pos, ok := t.m.next[topic]
				if !ok {
					pos = -1
					if o, ok := committed[topic][p]; ok {
						pos = o.Offset
					}
				}
				wt.pos[positionName(topic, p)] = pos
			}
		}
		tasks = append(tasks, wt)
	}
	r.taskMu.Unlock()
	keep := map[taskKey]bool{}
	for _, wt := range tasks {
		keep[taskKey{wt.id.SubTopology, wt.id.Partition}] = true
	}
	for _, k := range w.forget(func(k taskKey) bool { return keep[k] }) {
		id := topology.TaskID{SubTopology: k.sub, Partition: k.part}
		r.log.Info("stream: stalled task no longer watched (moved, closed or restoring)", "task", id.String())
		r.app.metrics.prom.stalled.DeleteLabelValues(id.String())
	}
	if len(tasks) == 0 {
		return
	}
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	ctx, cancel := context.WithTimeout(ctx, stallCheckTimeout)
	defer cancel()
	// Under exactly-once the input ends at the last stable offset: records
	// of an open transaction are not yet input.
	list := r.adm.ListEndOffsets
	if r.sess != nil {
		list = r.adm.ListCommittedOffsets
	}
	ends, err := list(ctx, names...)
	if err == nil {
		err = ends.Error()
	}
	var starts kadm.ListedOffsets
	if err == nil {
		starts, err = r.adm.ListStartOffsets(ctx, names...)
		if err == nil {
			err = starts.Error()
		}
	}
	if err != nil {
		// A check that cannot see the ends says nothing: the next one
		// tries again, and a stall is only reported later.
		r.log.Debug("stream: stall check: list offsets", "err", err)
		return
	}
	for _, wt := range tasks {
		var lag int64
		for topic, ps := range wt.tps {
			for _, p := range ps {
				end, ok := ends.Lookup(topic, p)
				if !ok {
					continue
				}
				pos := wt.pos[positionName(topic, p)]
				if start, ok := starts.Lookup(topic, p); ok {
					pos = max(pos, start.Offset) // below the start: reset there
				}
				lag += max(end.Offset-pos, 0)
			}
		}
		if wt.held {
			lag = 0 // not stuck: waiting for a task that moves
		}
		ev := w.observe(taskKey{wt.id.SubTopology, wt.id.Partition}, now, wt.pos, lag)
		r.reportStall(wt.id, ev, wt.pos, lag)
	}
}

// reportStall logs a change of a task's stall state and sets its gauge.
func (r *runner) reportStall(id topology.TaskID, ev stallEvent, pos map[string]int64, lag int64) {
	g := r.app.metrics.prom.stalled
	switch ev {
	case stallStarted:
		// What the consumer holds says where to look: a partition paused
		// and never resumed, or records fetched and not handed over.
		r.log.Warn("stream: task stalled: input to read and no progress", "task", id.String(), "lag", lag,
			"positions", pos, "for", r.stalls.timeout, "paused", r.cl.PauseFetchPartitions(nil),
			"buffered_records", r.cl.BufferedFetchRecords())
		g.WithLabelValues(id.String()).Set(1)
	case stallResolved:
		r.log.Info("stream: task no longer stalled", "task", id.String(), "lag", lag)
		g.WithLabelValues(id.String()).Set(0)
	}
}
