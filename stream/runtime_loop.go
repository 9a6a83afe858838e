package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runner is one worker of an App instance: a group member with its own
// client (and transactional producer under exactly-once) running its tasks
// on one goroutine (run). What it shares with the instance's other workers
// (state, topics, standbys) is in instance; the fields below copied from
// it are for brevity.
//
// Rebalances are held back while records are being processed
// (kgo.BlockRebalanceOnPoll) and allowed right after each commit, so a
// revocation never finds records processed and not committed. The group is
// cooperative: a rebalance revokes only the tasks that move, which the
// revocation callback closes (taskMu keeps it off the loop's work).
type runner struct {
	app      *App
	inst     *instance
	worker   int
	log      *slog.Logger
	brokers  []string
	cl       *kgo.Client
	sess     *kgo.GroupTransactSession // nil under at-least-once
	adm      *kadm.Client
	db       *pebblestore.DB
	parts    topology.Partitions
	routes   map[string][]int // full source topic -> sub-topologies reading it
	changelg map[string]bool  // full changelog topic names
	bal      *taskBalancer
	memberID string // the static group instance id

	taskMu sync.Mutex // held by the loop while it works, and by the group callbacks
	inLoop bool       // the loop holds taskMu
	tasks  map[taskKey]*runTask
	owned  []taskKey // tasks of the current assignment
	// restoring holds the owned tasks whose stores are being restored
	// (runtime_restore.go), read by rcl, the restore consumer.
	restoring map[taskKey]*restoration
	rcl       *kgo.Client
	settling  bool // the assignment changed: Running once no task restores
	// txnWork says records were processed or produced since the last
	// commit; loop goroutine only.
	txnWork bool
	purge   purger // deletes committed repartition records (runtime_purge.go)

	mu         sync.Mutex         // guards the following
	assigned   map[string][]int32 // partitions added and not yet turned into tasks
	revokedTxn bool               // a revocation failed the open (empty) transaction
	produceErr error              // first failed produce since the last commit
	// skippedProduce are the records the production handler let go since
	// the last commit, to be sent once more alone (see resendSkipped).
	skippedProduce []skippedRecord
	deferred       []*kgo.Record // produced by the production handler
}

// runTask is a task with its Pebble batch and the changelog positions its
// uncommitted writes reach.
type runTask struct {
	key   taskKey
	task  *topology.Task
	batch *pebblestore.Batch
	// positions maps "topic-partition" of each changelog written since the
	// last commit to the offset after the last record acknowledged.
	// Guarded by runner.mu: produce callbacks write it.
	positions map[string]int64
	m         *taskMetrics
}

func newRunner(in *instance, worker int) (*runner, error) {
	o := in.app.opts
	r := &runner{
		app: in.app, inst: in, worker: worker, log: in.log.With("worker", worker), brokers: in.brokers,
		adm: in.adm, db: in.db, parts: in.parts, routes: in.routes, changelg: in.changelg,
		tasks: map[taskKey]*runTask{}, restoring: map[taskKey]*restoration{},
	}
	// The member is static (KIP-345), with an id kept in the state
	// directory: a crashed instance that restarts within the session
	// timeout takes its old member's place and assignment, with no
	// rebalance and no wait for the old member to time out.
	r.memberID = fmt.Sprintf("%s-%s-%d", o.ApplicationID, in.process, worker)
	r.bal = &taskBalancer{subs: in.subs, stateful: in.stateful, standbys: o.StandbyReplicas,
		info: func() memberInfo { return in.memberInfo(worker) }}
	opts := []kgo.Opt{
		kgo.SeedBrokers(in.brokers...),
		kgo.ConsumerGroup(o.ApplicationID),
		kgo.InstanceID(r.memberID),
		kgo.SessionTimeout(o.SessionTimeout),
		kgo.ConsumeTopics(in.topics()...),
		kgo.Balancers(r.bal),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		// Control records move the position past transaction markers,
		// which the lag metric needs (process skips them).
		kgo.KeepControlRecords(),
		kgo.RecordPartitioner(partitioner{def: kgo.StickyKeyPartitioner(nil)}),
		kgo.FetchMaxWait(min(o.CommitInterval, 500*time.Millisecond)),
		kgo.OnPartitionsAssigned(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onLost),
	}
	var err error
	if o.Guarantee == ExactlyOnce {
		opts = append(opts,
			kgo.TransactionalID(r.memberID),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
		)
		if r.sess, err = kgo.NewGroupTransactSession(opts...); err != nil {
			return nil, fmt.Errorf("stream: %w", err)
		}
		r.cl = r.sess.Client()
	} else if r.cl, err = kgo.NewClient(opts...); err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	return r, nil
}

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
		if err := r.commit(ctx, false); err != nil {
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
// taskMu is held.
func (r *runner) dropTasks(parts map[string][]int32) {
	gone := map[taskKey]bool{}
	for _, k := range tasksOf(parts, r.routes) {
		gone[k] = true
		r.closeTask(k)
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

// partitioner sends a record to the partition it names, or by the murmur2
// hash of its key (Kafka's default) when it names -1.
type partitioner struct{ def kgo.Partitioner }

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return topicPartitioner{p.def.ForTopic(topic)}
}

type topicPartitioner struct{ def kgo.TopicPartitioner }

func (topicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }
func (p topicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 {
		return int(r.Partition)
	}
	return p.def.Partition(r, n)
}

// run processes until ctx is done or an error, then commits and closes.
func (r *runner) run(ctx context.Context) (err error) {
	ctx = r.inst.global.bind(ctx) // a failed global store update stops processing
	defer func() {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			err = nil // stopped by Close in the middle of something
		}
		if err != nil {
			r.log.Error("stream: processing stopped", "err", err)
		}
		err = errors.Join(err, r.close())
	}()
	if r.sess != nil {
		if err := r.sess.Begin(); err != nil {
			return fmt.Errorf("stream: begin transaction: %w", err)
		}
	}
	lastCommit := time.Now()
	for {
		// Poll no longer than until the next commit is due, so commits (and
		// the rebalances waiting for them) happen when input stops too.
		pollCtx, cancel := context.WithTimeout(ctx, r.pollWait(lastCommit))
		fetches := r.cl.PollRecords(pollCtx, maxPollRecords)
		cancel()
		r.lock()
		committed, err := r.turn(ctx, fetches, lastCommit)
		r.unlock()
		if ctx.Err() != nil || err != nil {
			return err
		}
		if committed {
			lastCommit = time.Now()
			r.maybePurge(ctx, lastCommit)
			r.cl.AllowRebalance()
		}
	}
}

// pollInterval is the longest a poll waits for records (Kafka Streams'
// poll.ms), so that wall-clock punctuation runs on time when input stops.
const pollInterval = 100 * time.Millisecond

// pollWait is how long the next poll may wait: until the next commit is
// due, so commits (and the rebalances waiting for them) happen when input
// stops too, at most pollInterval, and barely while tasks restore.
func (r *runner) pollWait(lastCommit time.Time) time.Duration {
	d := min(time.Until(lastCommit.Add(r.app.opts.CommitInterval)), pollInterval)
	r.lock()
	restoring := len(r.restoring) > 0
	r.unlock()
	if restoring {
		d = min(d, time.Millisecond)
	}
	return max(d, time.Millisecond)
}

// maxPollRecords bounds what one poll hands over (Kafka's max.poll.records
// default), so a backlog is processed in many commit intervals, and
// transactions, rather than in one.
const maxPollRecords = 1000

// lock and unlock take taskMu for the loop; outside releases it around
// client calls that may wait for a group callback (which takes taskMu).
func (r *runner) lock()   { r.taskMu.Lock(); r.inLoop = true }
func (r *runner) unlock() { r.inLoop = false; r.taskMu.Unlock() }

func (r *runner) outside(f func() error) error {
	if !r.inLoop {
		return f()
	}
	r.unlock()
	defer r.lock()
	return f()
}

// turn is one turn of the loop after a poll: it acts on assignment
// changes, processes the records, punctuates, and commits when a commit is
// due, reporting whether it committed. taskMu is held.
func (r *runner) turn(ctx context.Context, fetches kgo.Fetches, lastCommit time.Time) (committed bool, err error) {
	if ctx.Err() != nil {
		return false, r.commit(context.Background(), false)
	}
	if reset, err := r.resetRevokedTxn(ctx); err != nil {
		return false, err
	} else if reset {
		// The session rewound the consumer to the committed offsets:
		// these records will be fetched again.
		fetches = nil
	}
	if err := r.syncAssignment(ctx); err != nil {
		return false, err
	}
	wait := 200 * time.Millisecond // nothing else to do
	if len(r.tasks) > 0 {
		wait = time.Millisecond
	}
	if err := r.restoreStep(ctx, wait); err != nil {
		return false, err
	}
	if r.settling && len(r.restoring) == 0 {
		r.settling = false
		r.app.workerSettled(r.worker)
	}
	var ferr error
	fetches.EachError(func(t string, p int32, err error) {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && ferr == nil {
			ferr = fmt.Errorf("stream: fetch %s[%d]: %w", t, p, err)
		}
	})
	if ferr != nil {
		return false, ferr
	}
	if err := r.process(fetches); err != nil {
		return false, err
	}
	now := time.Now()
	due := now.Sub(lastCommit) >= r.app.opts.CommitInterval
	// Under exactly-once, wall-clock punctuation runs right before a
	// commit, so that what it writes is committed before the next
	// rebalance may revoke its task (the open transaction is then always
	// empty when a revocation comes: see resetRevokedTxn).
	if r.sess == nil || due {
		for _, t := range r.tasks {
			if err := t.task.AdvanceWallClock(now.UnixMilli()); err != nil {
				return false, err
			}
		}
	}
	if !due {
		return false, nil
	}
	// Close cancels ctx: a commit under way must still finish, or what it
	// covers would be processed again by the next instance.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	return true, r.commit(cctx, true)
}

// commitTimeout bounds a commit that Close does not interrupt.
const commitTimeout = 30 * time.Second

// resetRevokedTxn ends the open transaction after a revocation failed it:
// the session would abort its commit anyway. Nothing was processed since it
// began (rebalances wait for commits), so aborting loses nothing and no
// task needs rolling back. The abort rewinds the consumer to the committed
// offsets, so the records of the poll just made come again: it reports
// whether it reset, and the caller must then drop them.
func (r *runner) resetRevokedTxn(ctx context.Context) (bool, error) {
	r.mu.Lock()
	revoked := r.revokedTxn
	r.revokedTxn = false
	r.mu.Unlock()
	if !revoked || r.sess == nil {
		return false, nil
	}
	err := r.outside(func() error {
		_, err := r.sess.End(ctx, kgo.TryAbort)
		return err
	})
	if err != nil {
		return true, fmt.Errorf("stream: end transaction after revocation: %w", err)
	}
	if err := r.sess.Begin(); err != nil {
		return true, fmt.Errorf("stream: begin transaction: %w", err)
	}
	return true, nil
}

// syncAssignment creates (and restores) the tasks of partitions added to
// the member.
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
	t := &runTask{key: k, batch: r.db.NewBatch(id.String()), positions: map[string]int64{}, m: r.app.metrics.forTask(id)}
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

// collector produces a task's output; acknowledged changelog records move
// the task's positions.
func (r *runner) collector(t *runTask) topology.RecordCollector {
	return topology.RecordCollectorFunc(func(o topology.OutputRecord) error {
		rec := &kgo.Record{Topic: o.Topic, Partition: o.Partition, Key: o.Key, Value: o.Value, Timestamp: time.UnixMilli(o.Timestamp)}
		for _, h := range o.Headers {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		r.produce(t, rec, r.changelg[o.Topic])
		return nil
	})
}

// produce sends rec for task t; an acknowledged changelog record moves the
// task's position.
func (r *runner) produce(t *runTask, rec *kgo.Record, changelog bool) {
	r.txnWork = true
	r.cl.Produce(context.Background(), rec, func(rec *kgo.Record, err error) {
		if err != nil {
			r.produceFailed(t, rec, changelog, err)
			return
		}
		if changelog {
			r.mu.Lock()
			tp := positionName(rec.Topic, rec.Partition)
			t.positions[tp] = max(t.positions[tp], rec.Offset+1)
			r.mu.Unlock()
		}
	})
}

func positionName(topic string, partition int32) string {
	return fmt.Sprintf("%s-%d", topic, partition)
}

// process feeds the fetched records to their tasks, each task taking the
// record with the smallest timestamp among the heads of its partitions.
func (r *runner) process(fetches kgo.Fetches) error {
	queues := map[taskKey][][]*kgo.Record{}
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		r.updateLag(p)
		if len(p.Records) == 0 {
			return
		}
		for _, sub := range r.routes[p.Topic] {
			k := taskKey{sub, p.Partition}
			queues[k] = append(queues[k], p.Records)
		}
	})
	if len(queues) > 0 {
		r.txnWork = true
	}
	for k, qs := range queues {
		t, ok := r.tasks[k]
		if !ok {
			return fmt.Errorf("stream: records for task %d_%d, which this instance does not own", k.sub, k.part)
		}
		for {
			best := -1
			for i, q := range qs {
				if len(q) > 0 && (best < 0 || q[0].Timestamp.Before(qs[best][0].Timestamp)) {
					best = i
				}
			}
			if best < 0 {
				break
			}
			rec := qs[best][0]
			qs[best] = qs[best][1:]
			if rec.Attrs.IsControl() {
				continue
			}
			in := topology.InputRecord{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
				Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp.UnixMilli()}
			for _, h := range rec.Headers {
				in.Headers = append(in.Headers, topology.Header{Key: h.Key, Value: h.Value})
			}
			start := time.Now()
			if err := t.task.Process(in); errors.Is(err, topology.ErrDeserialization) {
				if err := r.handleDeserialization(t, rec, err); err != nil {
					return err
				}
				continue
			} else if err != nil {
				return fmt.Errorf("stream: %w", err)
			}
			t.m.recordProcessed(start, time.Now(), rec.Timestamp)
		}
	}
	return nil
}

// commit flushes the tasks and commits their output and input offsets;
// then it writes the changelog positions the commit covers into Pebble.
// Under exactly-once a failed transaction is aborted: every task is closed,
// its uncommitted store writes rolled back, and the tasks are re-created
// from their committed state, to process again from the committed offsets.
// begin starts the next transaction.
func (r *runner) commit(ctx context.Context, begin bool) error {
	start := time.Now()
	for _, t := range r.tasks {
		if err := t.task.Flush(); err != nil {
			return fmt.Errorf("stream: %w", err)
		}
		if ratio, ok := t.task.CacheHitRatio(); ok {
			t.m.setCacheHitRatio(t.task.ID(), ratio)
		}
	}
	// Flushed, every produce has its answer: the records the production
	// handler let go can be tried alone.
	err := r.outside(func() error {
		if err := r.cl.Flush(ctx); err != nil {
			return fmt.Errorf("stream: flush: %w", err)
		}
		return r.resendSkipped(ctx)
	})
	if err != nil {
		return err
	}
	if r.sess == nil {
		err := r.outside(func() error {
			if err := r.takeProduceErr(); err != nil {
				return err
			}
			if err := r.cl.CommitUncommittedOffsets(ctx); err != nil {
				return fmt.Errorf("stream: commit offsets: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := r.commitPositions(); err != nil {
			return err
		}
		r.app.metrics.committed(time.Since(start))
		return nil
	}
	if !r.txnWork {
		// Nothing to commit. (An End that commits no offsets also costs
		// 500 ms: the session then holds rebalances back, not knowing
		// the broker has KIP-447.)
		return nil
	}
	if len(r.cl.UncommittedOffsets()) == 0 {
		return r.commitProduced(ctx, begin)
	}
	try := kgo.TryCommit
	if err := r.takeProduceErr(); errors.As(err, new(*rejectedError)) {
		return err // the deferred close aborts the transaction
	} else if err != nil {
		try = kgo.TryAbort
	}
	var committed bool
	err = r.outside(func() (err error) {
		// Not under taskMu: the session's revocation hook holds its
		// own lock while it calls onRevoked, which takes taskMu.
		committed, err = r.sess.End(ctx, try)
		return err
	})
	if committed && err == nil {
		if err := r.commitPositions(); err != nil {
			return err
		}
		r.app.metrics.committed(time.Since(start))
	} else {
		r.app.metrics.aborted()
		r.log.Info("stream: transaction aborted; reprocessing from the committed offsets", "err", err)
		r.takeProduceErr()
		r.closeTasks()
		if err := r.ensureTasks(ctx); err != nil {
			return err
		}
	}
	r.txnWork = false
	if begin {
		if err := r.sess.Begin(); err != nil {
			return fmt.Errorf("stream: begin transaction: %w", err)
		}
	}
	return nil
}

// commitProduced commits a transaction that consumed nothing: output of
// wall-clock punctuation, or of cache flushes, while input stops. The
// producer's transaction is ended directly, with taskMu held, so that no
// revocation can close a task (and hand it to another member) before its
// output is committed; the session's End would stall (see commit).
func (r *runner) commitProduced(ctx context.Context, begin bool) error {
	if err := r.takeProduceErr(); err != nil {
		return err // the deferred close aborts the transaction
	}
	r.mu.Lock()
	revoked := r.revokedTxn
	r.mu.Unlock()
	try := kgo.TryCommit
	if revoked {
		try = kgo.TryAbort
	}
	if err := r.cl.EndTransaction(ctx, try); err != nil {
		return fmt.Errorf("stream: end transaction: %w", err)
	}
	if revoked {
		r.app.metrics.aborted()
		r.closeTasks() // their uncommitted writes went with the transaction
		if err := r.ensureTasks(ctx); err != nil {
			return err
		}
	} else {
		if err := r.commitPositions(); err != nil {
			return err
		}
		r.app.metrics.committed(0)
	}
	r.txnWork = false
	if begin {
		if err := r.sess.Begin(); err != nil {
			return fmt.Errorf("stream: begin transaction: %w", err)
		}
	}
	return nil
}

func (r *runner) takeProduceErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.produceErr
	r.produceErr = nil
	return err
}

// commitPositions commits every task's batch with its changelog
// positions, then waits for them all to reach the disk with one fsync.
func (r *runner) commitPositions() error {
	for _, t := range r.tasks {
		r.mu.Lock()
		pos := t.positions
		t.positions = map[string]int64{}
		r.mu.Unlock()
		if err := t.batch.CommitNoSync(pos); err != nil {
			return fmt.Errorf("stream: task %s: %w", t.task.ID(), err)
		}
	}
	if len(r.tasks) == 0 {
		return nil
	}
	if err := r.db.SyncWAL(); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	return nil
}

// closeTasks closes every task and rolls back its uncommitted writes.
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
		if err := r.endRestore(rs, nil); err != nil {
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
	r.app.queries.closed(k)
	r.app.metrics.dropTask(t.task.ID())
	r.inst.owners.release(k, r.worker)
	r.app.metrics.closed.Add(1)
}

// close releases everything the runner holds. The member leaves the group
// unless the application keeps its membership for a restart (see
// LeaveGroupOnClose).
func (r *runner) close() error {
	r.lock()
	r.closeTasks()
	r.unlock()
	if r.rcl != nil {
		r.rcl.Close()
	}
	if r.sess != nil {
		// A transaction left open would hold read_committed readers back
		// until it timed out. Ending none is a no-op.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r.sess.End(ctx, kgo.TryAbort)
		cancel()
	}
	if r.cl == nil {
		return nil
	}
	// A static member does not leave when its client closes, so that it can
	// come back without a rebalance; an application that stops for good
	// leaves explicitly, so its tasks move at once.
	r.cl.CloseAllowingRebalance()
	if !r.app.opts.LeaveGroupOnClose {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := r.adm.LeaveGroup(ctx, kadm.LeaveGroup(r.app.opts.ApplicationID).InstanceIDs(r.memberID).Reason("application closed"))
	if err == nil {
		err = resp.Error()
	}
	if err != nil && !errors.Is(err, kerr.UnknownMemberID) {
		r.log.Warn("stream: leave group", "err", err)
	}
	return nil
}
