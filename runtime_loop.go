package runnel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
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
// revocation never finds records processed and not committed. Records
// fetched and not yet processed wait in their task's queues
// (runtime_queue.go) across commits; a commit covers only those processed
// (runtime_input.go), and a revocation drops the others. A rebalance
// that waits (the first assignment too) does not wait for the commit
// interval: the client says so (kgo.OnPartitionsCallbackBlocked) and the
// loop commits at once, as Kafka Streams commits before it gives up
// partitions. The group is
// cooperative: a rebalance revokes only the tasks that move, which the
// revocation callback closes (taskMu keeps it off the loop's work: see
// the Concurrency section of the package doc).
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
	memberID string       // the static group instance id
	ct       *commitTimer // Debug only (runtime_committime.go)

	// taskMu guards the task state: the fields from here to mu. The loop
	// takes it for each step on the tasks (withTasks), a group callback
	// for the whole callback; a function called with it held never
	// releases it. Functions that need it say REQUIRES.
	taskMu sync.Mutex
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
	// rebalanceWaiting is set when the client holds a rebalance back for
	// the loop's AllowRebalance: the next turn commits without waiting for
	// the commit interval.
	rebalanceWaiting atomic.Bool
	purge            purger     // deletes committed repartition records (runtime_purge.go)
	align            *aligner   // loop goroutine only (runtime_align.go)
	stalls           stallWatch // loop goroutine only (runtime_watchdog.go)
	// committedAt holds, for each source partition the worker fetched
	// from since it was assigned, the offset its group commit stands at
	// as far as the worker knows: where to rewind the consumer after an
	// aborted transaction (runtime_input.go).
	committedAt map[topicPartition]kgo.EpochOffset
	// throttled are the partitions paused because their queue is full
	// (see applyBackpressure).
	throttled map[topicPartition]bool

	mu         sync.Mutex         // guards the following
	assigned   map[string][]int32 // partitions added and not yet turned into tasks
	revokedTxn bool               // a revocation failed the open (empty) transaction
	produceErr error              // first failed produce since the last commit
	// skippedProduce are the records the production handler let go since
	// the last commit, to be sent once more alone (see resendSkipped).
	skippedProduce []skippedRecord
	deferred       []*kgo.Record             // produced by the production handler
	positionNames  map[topicPartition]string // positionName's results, see positionNameLocked
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
	// promises are the produce callbacks of the task's records, by
	// kind (see promise). Only the loop that owns the task touches it.
	promises [4]func(*kgo.Record, error)
	// in holds the records fetched and not yet processed, and the
	// positions processed (runtime_queue.go).
	in *inputQueues
	// align is the task's alignment group, -1 for none (runtime_align.go).
	align int
}

func newRunner(in *instance, worker int) (*runner, error) {
	o := in.app.opts
	r := &runner{
		app: in.app, inst: in, worker: worker, log: in.log.With("worker", worker), brokers: in.brokers,
		adm: in.adm, db: in.db, parts: in.parts, routes: in.routes, changelg: in.changelg,
		tasks: map[taskKey]*runTask{}, restoring: map[taskKey]*restoration{},
		stalls:      stallWatch{timeout: o.StallTimeout},
		committedAt: map[topicPartition]kgo.EpochOffset{}, throttled: map[topicPartition]bool{},
		align: newAligner(o.MaxSourceDrift),
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
		kgo.FetchMaxWait(max(10*time.Millisecond, min(o.CommitInterval, 500*time.Millisecond))), // kgo refuses less than 10 ms
		kgo.WithPools(&fetchRecordPool),
		kgo.OnPartitionsAssigned(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onLost),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { r.rebalanceWaiting.Store(true) }),
	}
	r.ct = newCommitTimer(r.log)
	if h := r.ct.hook(); h != nil {
		opts = append(opts, kgo.WithHooks(h))
	}
	var err error
	opts = append(opts, clientRecoveryOpts()...)
	opts = append(opts, o.clientOpts()...)
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
		committed, err := r.turn(ctx, fetches, lastCommit)
		if ctx.Err() != nil || err != nil {
			return err
		}
		if committed {
			lastCommit = time.Now()
			r.maybePurge(ctx, lastCommit)
			r.cl.AllowRebalance()
		}
		if f := r.app.pauseInput; f != nil {
			pause, resume := f()
			r.cl.PauseFetchPartitions(pause)
			r.cl.ResumeFetchPartitions(resume)
		}
		r.checkStalls(ctx, time.Now())
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
	r.taskMu.Lock()
	restoring := len(r.restoring) > 0
	r.taskMu.Unlock()
	if restoring {
		d = min(d, time.Millisecond)
	}
	return max(d, time.Millisecond)
}

// maxPollRecords bounds what one poll hands over (Kafka's max.poll.records
// default), so a backlog is processed in many commit intervals, and
// transactions, rather than in one.
const maxPollRecords = 1000

// withTasks runs f with taskMu held: a step of the loop on the tasks.
func (r *runner) withTasks(f func() error) error {
	r.taskMu.Lock()
	defer r.taskMu.Unlock()
	return f()
}

// turn is one turn of the loop after a poll: it acts on assignment
// changes, restores, processes the records, punctuates, and commits when a
// commit is due, reporting whether it committed. It is called without
// taskMu and takes it for its steps on the tasks; between them it makes
// the calls that wait (the restore poll, ending a transaction, commit's).
func (r *runner) turn(ctx context.Context, fetches kgo.Fetches, lastCommit time.Time) (committed bool, err error) {
	if ctx.Err() != nil {
		return false, r.commit(context.Background(), false)
	}
	if reset, err := r.resetRevokedTxn(ctx); err != nil {
		return false, err
	} else if reset {
		// The consumer is rewound to the committed offsets: these
		// records, and those queued, will be fetched again.
		fetches = nil
		r.withTasks(func() error { r.rewindInputs(); return nil })
	}
	wait := 200 * time.Millisecond // nothing else to do
	var restore bool
	err = r.withTasks(func() error {
		if err := r.syncAssignment(ctx); err != nil {
			return err
		}
		if len(r.tasks) > 0 {
			wait = time.Millisecond
		}
		restore = len(r.restoring) > 0 && (r.app.holdRestore == nil || !r.app.holdRestore())
		return nil
	})
	if err != nil {
		return false, err
	}
	var restored kgo.Fetches
	if restore {
		restored = r.pollRestore(ctx, wait)
	}
	var due bool
	err = r.withTasks(func() (err error) {
		if restore {
			if err := r.applyRestore(restored); err != nil {
				return err
			}
		}
		due, err = r.processAndPunctuate(fetches, lastCommit)
		return err
	})
	if err != nil || !due {
		return false, err
	}
	// Close cancels ctx: a commit under way must still finish, or what it
	// covers would be processed again by the next instance.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	return true, r.commit(cctx, true)
}

// processAndPunctuate is the part of a turn on the tasks: it marks the
// worker settled once no task restores, processes the fetched records and
// punctuates, reporting whether a commit is due. REQUIRES: r.taskMu held.
func (r *runner) processAndPunctuate(fetches kgo.Fetches, lastCommit time.Time) (due bool, err error) {
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
	// A rebalance waiting for this member is due a commit now: the first
	// assignment would otherwise wait for a whole commit interval (30 s
	// under at-least-once), and a revocation would hold the group back
	// as long.
	waiting := r.rebalanceWaiting.Swap(false)
	asked := r.inst.commitAskedOf(r.worker) // by WaitIdle
	due = waiting || asked || now.Sub(lastCommit) >= r.app.opts.CommitInterval
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
	return due, nil
}

// commitTimeout bounds a commit that Close does not interrupt. A variable
// for tests.
var commitTimeout = 30 * time.Second

// collector produces a task's output; acknowledged changelog records move
// the task's positions. The key and value are the task's only during
// Send: they are copied into the record's own buffer (see outputRecords).
func (r *runner) collector(t *runTask) topology.RecordCollector {
	return topology.RecordCollectorFunc(func(o topology.OutputRecord) error {
		rec := outputRecords.Get().(*kgo.Record)
		buf := rec.Key[:0] // the buffer the record was put back with
		*rec = kgo.Record{Topic: o.Topic, Partition: o.Partition, Timestamp: time.UnixMilli(o.Timestamp)}
		rec.Key, rec.Value = copyKeyValue(buf, o.Key, o.Value)
		for _, h := range o.Headers {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		changelog := r.changelg[o.Topic]
		r.txnWork = true
		r.cl.Produce(context.Background(), rec, t.promise(r, changelog, true))
		return nil
	})
}

// outputRecords holds the kgo.Records the collector produced and the
// client acknowledged, each with the buffer its key and value were copied
// into kept in Key (empty, with the buffer's capacity): a record a task
// writes costs no allocation of its own once the pool is warm. A record
// that failed is not put back (the production handler and the error path
// may keep it).
var outputRecords = sync.Pool{New: func() any { return new(kgo.Record) }}

// copyKeyValue copies key and value into buf, one after the other,
// growing it if need be, and returns the copies: nil stays nil (a null),
// empty stays empty. The first non-null copy starts buf and keeps its
// capacity, so recycleOutput finds the buffer again.
func copyKeyValue(buf, key, value []byte) (k, v []byte) {
	if key == nil && value == nil {
		return nil, nil
	}
	n := len(key) + len(value)
	if buf == nil || cap(buf) < n {
		buf = make([]byte, 0, max(n, 64))
	}
	if key != nil {
		k = append(buf[:0], key...)
		buf = k[len(k):len(k)]
	}
	if value != nil {
		v = append(buf[:0], value...)
		if key != nil {
			v = v[:len(v):len(v)]
		}
	}
	return k, v
}

// recycleOutput puts an acknowledged record the collector made back into
// outputRecords, keeping its buffer.
func recycleOutput(rec *kgo.Record) {
	buf := rec.Key
	if buf == nil {
		buf = rec.Value
	}
	*rec = kgo.Record{Key: buf[:0]}
	outputRecords.Put(rec)
}

// produce sends rec for task t; an acknowledged changelog record moves the
// task's position. rec stays the caller's: it is never put in outputRecords.
func (r *runner) produce(t *runTask, rec *kgo.Record, changelog bool) {
	r.txnWork = true
	r.cl.Produce(context.Background(), rec, t.promise(r, changelog, false))
}

// promise returns the produce callback of t's records, made once per kind
// (a changelog or not, a pooled record or not) rather than per record.
// Only the loop that owns t calls it.
func (t *runTask) promise(r *runner, changelog, pooled bool) func(*kgo.Record, error) {
	i := 0
	if changelog {
		i |= 1
	}
	if pooled {
		i |= 2
	}
	if f := t.promises[i]; f != nil {
		return f
	}
	f := func(rec *kgo.Record, err error) {
		if err != nil {
			r.produceFailed(t, rec, changelog, err)
			return
		}
		if changelog {
			r.mu.Lock()
			tp := r.positionNameLocked(rec.Topic, rec.Partition)
			t.positions[tp] = max(t.positions[tp], rec.Offset+1)
			r.mu.Unlock()
		}
		if pooled {
			// The client is done with rec once its promise returns.
			recycleOutput(rec)
		}
	}
	t.promises[i] = f
	return f
}

// positionNameLocked returns positionName(topic, partition), remembered:
// it is asked once per acknowledged changelog record.
// REQUIRES: r.mu held.
func (r *runner) positionNameLocked(topic string, partition int32) string {
	k := topicPartition{topic, partition}
	if name, ok := r.positionNames[k]; ok {
		return name
	}
	if r.positionNames == nil {
		r.positionNames = map[topicPartition]string{}
	}
	name := positionName(topic, partition)
	r.positionNames[k] = name
	return name
}

// topicPartition names a partition.
type topicPartition struct {
	topic     string
	partition int32
}

func positionName(topic string, partition int32) string {
	return fmt.Sprintf("%s-%d", topic, partition)
}

// process queues the fetched records in their tasks' input queues and
// processes what the queues let go, each task taking the record with the
// smallest timestamp among the heads of its partitions (see inputQueues).
// It runs every turn, fetches or not: time may release a held record.
// REQUIRES: r.taskMu held.
func (r *runner) process(fetches kgo.Fetches) error {
	var err error
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		end := r.updateLag(p)
		if len(p.Records) > 0 {
			r.txnWork = true
			r.fetchedFrom(p.Topic, p.Partition, p.Records[0])
		}
		for _, sub := range r.routes[p.Topic] {
			t, ok := r.tasks[taskKey{sub, p.Partition}]
			if !ok {
				if len(p.Records) > 0 && err == nil {
					err = fmt.Errorf("stream: records for task %d_%d, which this instance does not own", sub, p.Partition)
				}
				continue
			}
			t.in.fetched(p.Topic, p.Records, end, p.LogStartOffset)
		}
	})
	if err != nil {
		return err
	}
	now := time.Now()
	behind := cmp.Or(r.app.holdBehind, maxHoldBehind)
	// One pass processes what each task may take; a pass that moved an
	// aligned group's frontier may let its tasks take more.
	starting := r.alignStarting()
	for {
		r.align.update(r.tasks, starting, now, behind)
		progressed := false
		for _, t := range r.tasks {
			n, err := r.processQueued(t, now, r.align.limit(t))
			if err != nil {
				return err
			}
			progressed = progressed || n > 0
		}
		if !progressed || !r.align.limiting() {
			break
		}
	}
	queued := 0
	for _, t := range r.tasks {
		queued += t.in.len()
	}
	r.applyBackpressure()
	if r.app.queued != nil {
		r.app.queued(queued)
	}
	return nil
}

// alignStarting returns the alignment groups of the tasks assigned to the
// worker that do not run yet. REQUIRES: r.taskMu held.
func (r *runner) alignStarting() []int {
	var out []int
	if r.align.drift < 0 {
		return out
	}
	for _, k := range r.owned {
		if g := r.inst.align[k.sub]; g >= 0 && r.tasks[k] == nil && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// processQueued processes what task t's input queues let go at now, up
// to records timestamped limit (ms), and returns how many it processed.
// REQUIRES: r.taskMu held.
func (r *runner) processQueued(t *runTask, now time.Time, limit int64) (n int, err error) {
	idle, behind := r.app.opts.MaxTaskIdle, cmp.Or(r.app.holdBehind, maxHoldBehind)
	t.m.startBatch()
	for ; ; n++ {
		rec, part, ok := t.in.next(now, idle, behind, limit)
		if !ok {
			return n, nil
		}
		in := topology.InputRecord{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
			Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp.UnixMilli()}
		for _, h := range rec.Headers {
			in.Headers = append(in.Headers, topology.Header{Key: h.Key, Value: h.Value})
		}
		start := t.m.startRecord()
		if err := t.task.Process(in); errors.Is(err, topology.ErrDeserialization) {
			// Not recycled: the handler may keep rec.
			if err := r.handleDeserialization(t, rec, err); err != nil {
				return n, err
			}
			continue
		} else if err != nil {
			return n, fmt.Errorf("stream: %w", err)
		}
		t.m.recordProcessed(start, rec.Timestamp)
		// Each record goes back to the client's pool (fetchRecords) once
		// its task is done with it, unless another task has it queued too.
		if part.recycle {
			rec.Recycle()
		}
	}
}

// close releases everything the runner holds. The member leaves the group
// unless the application keeps its membership for a restart (see
// LeaveGroupOnClose).
func (r *runner) close() error {
	r.ct.report(r.log)
	r.purge.wait()
	r.taskMu.Lock()
	r.closeTasks()
	r.taskMu.Unlock()
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
