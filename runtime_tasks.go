package runnel

// This file holds a worker's task lifecycle: the group callbacks, and
// starting (restoring), running and closing tasks. The callbacks take
// runner.taskMu for their whole run; every other function here that reads
// or changes the task state requires it held by its caller.

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// onAssigned records the partitions added to the member, for the loop to
// turn into tasks, and hands the new standby tasks to the instance.
func (r *runner) onAssigned(_ context.Context, cl *kgo.Client, added map[string][]int32) {
	// Fetching starts after this returns: paused, a partition's records
	// wait for its task to be restored (see finishTask).
	cl.PauseFetchPartitions(added)
	r.mu.Lock()
	if r.assigned == nil {
		r.assigned = map[string][]int32{}
	}
	for t, ps := range added {
		r.assigned[t] = append(r.assigned[t], ps...)
	}
	r.mu.Unlock()
	r.app.queries.rebalance(r.worker)
	if r.inst.standby != nil {
		r.inst.standby.set(r.worker, r.bal.standbyTasks())
	}
}

// onRevoked closes the tasks of the revoked partitions before the group
// may give them to another member. Under at-least-once it first commits
// what was processed; under exactly-once nothing processed is uncommitted
// (see runner), and the session aborts the open, empty, transaction.
func (r *runner) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r.taskMu.Lock()
	defer r.taskMu.Unlock()
	if r.sess == nil {
		if err := r.commitRevoking(ctx); err != nil {
			r.log.Warn("stream: commit before revocation", "err", err)
		}
	}
	r.dropTasks(revoked)
}

// onLost closes the tasks of partitions the member lost (its session
// expired): their uncommitted work is rolled back, as another member may
// already run them.
func (r *runner) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.taskMu.Lock()
	defer r.taskMu.Unlock()
	r.dropTasks(lost)
}

// dropTasks closes the tasks of the given partitions and forgets them.
// REQUIRES: r.taskMu held.
func (r *runner) dropTasks(parts map[string][]int32) {
	gone := map[taskKey]bool{}
	for _, k := range tasksOf(parts, r.routes) {
		gone[k] = true
		if t, ok := r.tasks[k]; ok && r.app.revokedQueued != nil {
			r.app.revokedQueued(t.in.len())
		}
		r.closeTask(k) // the records it had queued are dropped: the next owner reads them
		r.forgetInputs(k)
	}
	r.owned = slices.DeleteFunc(r.owned, func(k taskKey) bool { return gone[k] })
	r.app.queries.rebalance(r.worker)
	r.mu.Lock()
	r.revokedTxn = r.sess != nil
	for t, ps := range r.assigned {
		r.assigned[t] = slices.DeleteFunc(ps, func(p int32) bool { return slices.Contains(parts[t], p) })
	}
	r.mu.Unlock()
	r.log.Info("stream: revoked", "tasks", len(gone), "remaining", len(r.owned))
}

// syncAssignment creates (and restores) the tasks of partitions added to
// the member. REQUIRES: r.taskMu held.
func (r *runner) syncAssignment(ctx context.Context) error {
	r.mu.Lock()
	assigned := r.assigned
	r.assigned = nil
	r.mu.Unlock()
	if assigned != nil {
		r.app.workerSettling(r.worker)
	}
	if len(assigned) > 0 {
		added := tasksOf(assigned, r.routes)
		for _, k := range added {
			if !slices.Contains(r.owned, k) {
				r.owned = append(r.owned, k)
			}
		}
		sortTasks(r.owned)
		r.log.Info("stream: assigned", "added", len(added), "tasks", len(r.owned))
	}
	if err := r.ensureTasks(ctx); err != nil {
		return err
	}
	r.app.queries.settled(r.worker)
	if assigned != nil {
		r.settling = true
	}
	return nil
}

// ensureTasks starts the owned tasks that do not run yet: at once if
// their state is up to date, after restoring it otherwise.
func (r *runner) ensureTasks(ctx context.Context) error {
	for _, k := range r.owned {
		if _, ok := r.tasks[k]; ok {
			continue
		}
		if _, ok := r.restoring[k]; ok {
			continue
		}
		if err := r.startTask(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// startTask takes task k's state over (from another worker of the
// instance, or from the standby updater) and restores it or, if it is up
// to date, runs the task.
func (r *runner) startTask(ctx context.Context, k taskKey) error {
	if err := r.inst.owners.acquire(ctx, k, r.worker); err != nil {
		return err
	}
	fail := func(err error) error {
		r.app.queries.closed(k)
		r.inst.owners.release(k, r.worker)
		return err
	}
	if r.inst.standby != nil {
		if err := r.inst.standby.take(k); err != nil {
			return fail(err)
		}
	}
	r.app.queries.restoring(k)
	r.cl.PauseFetchPartitions(r.partitionsOf(k)) // after an abort, the task's partitions are not paused
	rs, err := r.planRestore(ctx, k)
	if err != nil {
		return fail(err)
	}
	if rs != nil && !rs.done() {
		if err := r.beginRestore(rs); err != nil {
			rs.batch.Rollback()
			return fail(err)
		}
		return nil
	}
	if rs != nil {
		if err := rs.commit(); err != nil {
			return fail(fmt.Errorf("stream: task %s: %w", k, err))
		}
	}
	if err := r.finishTask(k); err != nil {
		return fail(err)
	}
	return nil
}

// finishTask creates task k, whose state is restored, and resumes
// fetching its partitions.
func (r *runner) finishTask(k taskKey) error {
	id := topology.TaskID{SubTopology: k.sub, Partition: k.part}
	t := &runTask{key: k, batch: r.db.NewBatch(id.String()), positions: map[string]int64{}, m: r.app.metrics.forTask(id),
		align: r.inst.align[k.sub]}
	o := r.app.opts
	globals, err := r.inst.global.view()
	if err != nil {
		return err
	}
	task, err := topology.NewTask(r.app.topo, topology.TaskConfig{
		ApplicationID: o.ApplicationID, ID: id, Collector: r.collector(t), Stores: t.batch, GlobalStores: globals,
		WallClock: time.Now().UnixMilli(), Caching: o.CacheBytes > 0, CacheBytes: o.CacheBytes,
		Drops: &r.app.metrics,
	})
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	t.task = task
	t.in = newInputQueues(r.sourcesOf(k), func(topic string) bool { return len(r.routes[topic]) == 1 })
	r.listInputs(t)
	r.tasks[k] = t
	r.app.queries.ready(k)
	// A partition read by several sub-topologies resumes once all their
	// tasks run.
	resume := map[string][]int32{}
	for topic, ps := range r.partitionsOf(k) {
		ready := true
		for _, sub := range r.routes[topic] {
			if _, ok := r.tasks[taskKey{sub, k.part}]; !ok {
				ready = false
			}
		}
		if ready {
			resume[topic] = ps
		}
	}
	r.cl.ResumeFetchPartitions(resume)
	return nil
}

// sourcesOf returns the source topics of task k that have its partition,
// in the sub-topology's order.
func (r *runner) sourcesOf(k taskKey) []string {
	var out []string
	for _, topic := range r.inst.subs[k.sub] {
		if int(k.part) < r.parts.Topics[topic] {
			out = append(out, topic)
		}
	}
	return out
}

// partitionsOf returns the source partitions of task k.
func (r *runner) partitionsOf(k taskKey) map[string][]int32 {
	out := map[string][]int32{}
	for _, topic := range r.inst.subs[k.sub] {
		if int(k.part) < r.parts.Topics[topic] {
			out[topic] = []int32{k.part}
		}
	}
	return out
}

// closeTasks closes every task and rolls back its uncommitted writes.
// REQUIRES: r.taskMu held.
func (r *runner) closeTasks() {
	for k := range r.tasks {
		r.closeTask(k)
	}
	for k := range r.restoring {
		r.closeTask(k)
	}
}

// closeTask closes task k, rolls back its uncommitted writes and releases
// it to the instance's other workers and standbys.
func (r *runner) closeTask(k taskKey) {
	if rs, ok := r.restoring[k]; ok {
		// What was restored is committed data: keep it.
		if err := r.endRestore(rs); err != nil {
			r.log.Warn("stream: end restoration", "task", k, "err", err)
		}
		r.app.queries.closed(k)
		r.app.metrics.dropTask(topology.TaskID{SubTopology: k.sub, Partition: k.part})
		r.inst.owners.release(k, r.worker)
		return
	}
	t, ok := r.tasks[k]
	if !ok {
		return
	}
	if err := t.task.Close(); err != nil {
		r.log.Warn("stream: close task", "task", t.task.ID(), "err", err)
	}
	if err := t.batch.Rollback(); err != nil {
		r.log.Warn("stream: roll back task", "task", t.task.ID(), "err", err)
	}
	delete(r.tasks, k)
	for _, topic := range t.in.topics() {
		delete(r.throttled, topicPartition{topic, k.part}) // startTask pauses it anyway
	}
	r.app.queries.closed(k)
	r.app.metrics.dropTask(t.task.ID())
	r.inst.owners.release(k, r.worker)
	r.app.metrics.closed.Add(1)
}
