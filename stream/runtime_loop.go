package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runner is one App instance's processing: it owns the client, the Pebble
// database and the tasks, and runs them all on one goroutine (run). The
// group callbacks only record what changed, under mu; run acts on it.
//
// Rebalances are held back while records are being processed
// (kgo.BlockRebalanceOnPoll) and allowed right after each commit, so a
// revocation never finds uncommitted work.
type runner struct {
	app      *App
	log      *slog.Logger
	brokers  []string
	cl       *kgo.Client
	sess     *kgo.GroupTransactSession // nil under at-least-once
	adm      *kadm.Client
	db       *pebblestore.DB
	parts    topology.Partitions
	routes   map[string][]int // full source topic -> sub-topologies reading it
	changelg map[string]bool  // full changelog topic names
	tasks    map[taskKey]*runTask
	owned    []taskKey // tasks of the current assignment
	purge    purger    // deletes committed repartition records (runtime_purge.go)

	mu         sync.Mutex         // guards the following
	assigned   map[string][]int32 // new assignment not yet turned into tasks
	revoked    bool               // the assignment was revoked or lost
	produceErr error              // first failed produce since the last commit
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
}

func newRunner(ctx context.Context, a *App, brokers []string, dir, instance string) (*runner, error) {
	o := a.opts
	r := &runner{
		app: a, log: o.Logger, brokers: brokers,
		routes: map[string][]int{}, changelg: map[string]bool{}, tasks: map[taskKey]*runTask{},
	}
	// A short metadata min age: kadm answers from kgo's metadata cache,
	// which otherwise keeps a topic just created as missing for 5 s
	// (waitTopics polls it; restore lists the changelogs' offsets).
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	r.adm = kadm.NewClient(admCl)
	fail := func(err error) (*runner, error) {
		r.close()
		return nil, err
	}
	if r.parts, err = ensureTopics(ctx, r.adm, a.topo, o.ApplicationID, o.SourcePartitions, int16(o.ReplicationFactor)); err != nil {
		return fail(err)
	}
	if a.topo.Global() != nil {
		return fail(errors.New("stream: global stores are not supported by the runtime yet"))
	}
	bal := &taskBalancer{}
	var topics []string
	for _, s := range a.topo.SubTopologies() {
		var full []string
		for _, t := range s.SourceTopics() {
			name := a.topo.TopicName(o.ApplicationID, t)
			full = append(full, name)
			r.routes[name] = append(r.routes[name], s.ID())
			topics = append(topics, name)
		}
		bal.subs = append(bal.subs, full)
	}
	for _, it := range r.parts.Internal {
		if it.Kind == topology.Changelog {
			r.changelg[it.Name] = true
		}
	}
	// Sync: Pebble keeps unsynced WAL writes in its own buffer, not the
	// kernel's, so without it a SIGKILLed process loses its committed
	// changelog positions and restores the whole changelog (scenario 22).
	// One fsync per task per commit interval.
	if r.db, err = pebblestore.Open(filepath.Join(dir, "pebble"), pebblestore.Options{Sync: true}); err != nil {
		return fail(fmt.Errorf("stream: %w", err))
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup(o.ApplicationID),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(bal),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.RecordPartitioner(partitioner{def: kgo.StickyKeyPartitioner(nil)}),
		kgo.FetchMaxWait(min(o.CommitInterval, 500*time.Millisecond)),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			r.mu.Lock()
			r.assigned = maps.Clone(m)
			r.mu.Unlock()
		}),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onRevoked),
	}
	if o.Guarantee == ExactlyOnce {
		opts = append(opts,
			kgo.TransactionalID(o.ApplicationID+"-"+instance),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
		)
		if r.sess, err = kgo.NewGroupTransactSession(opts...); err != nil {
			return fail(fmt.Errorf("stream: %w", err))
		}
		r.cl = r.sess.Client()
	} else if r.cl, err = kgo.NewClient(opts...); err != nil {
		return fail(fmt.Errorf("stream: %w", err))
	}
	return r, nil
}

func (r *runner) onRevoked(context.Context, *kgo.Client, map[string][]int32) {
	r.mu.Lock()
	r.revoked = true
	r.mu.Unlock()
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
	interval := r.app.opts.CommitInterval
	lastCommit := time.Now()
	// maxPollRecords bounds what one poll hands over (Kafka's
	// max.poll.records default), so a backlog is processed in many
	// commit intervals, and transactions, rather than in one.
	const maxPollRecords = 1000
	for {
		// Poll no longer than until the next commit is due, so commits (and
		// the rebalances waiting for them) happen when input stops too.
		pollCtx, cancel := context.WithTimeout(ctx, max(time.Until(lastCommit.Add(interval)), time.Millisecond))
		fetches := r.cl.PollRecords(pollCtx, maxPollRecords)
		cancel()
		if ctx.Err() != nil {
			return r.commit(context.Background(), false)
		}
		if err := r.syncAssignment(ctx); err != nil {
			return err
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && ferr == nil {
				ferr = fmt.Errorf("stream: fetch %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		if err := r.process(fetches); err != nil {
			return err
		}
		now := time.Now()
		for _, t := range r.tasks {
			if err := t.task.AdvanceWallClock(now.UnixMilli()); err != nil {
				return err
			}
		}
		if now.Sub(lastCommit) >= interval {
			if err := r.commit(ctx, true); err != nil {
				return err
			}
			lastCommit = now
			r.maybePurge(ctx, now)
			r.cl.AllowRebalance()
		}
	}
}

// syncAssignment closes every task after a revocation and creates (and
// restores) the tasks of a new assignment.
func (r *runner) syncAssignment(ctx context.Context) error {
	r.mu.Lock()
	revoked, assigned := r.revoked, r.assigned
	r.revoked, r.assigned = false, nil
	r.mu.Unlock()
	if revoked {
		r.closeTasks()
		r.owned = nil
	}
	if assigned != nil {
		r.owned = tasksOf(assigned, r.routes)
		r.log.Info("stream: assigned", "tasks", len(r.owned))
	}
	return r.ensureTasks(ctx)
}

// ensureTasks creates the owned tasks that do not run yet.
func (r *runner) ensureTasks(ctx context.Context) error {
	for _, k := range r.owned {
		if _, ok := r.tasks[k]; ok {
			continue
		}
		t, err := r.newTask(ctx, k)
		if err != nil {
			return err
		}
		r.tasks[k] = t
	}
	return nil
}

func (r *runner) newTask(ctx context.Context, k taskKey) (*runTask, error) {
	id := topology.TaskID{SubTopology: k.sub, Partition: k.part}
	if err := r.restore(ctx, id); err != nil {
		return nil, err
	}
	t := &runTask{key: k, batch: r.db.NewBatch(id.String()), positions: map[string]int64{}}
	o := r.app.opts
	task, err := topology.NewTask(r.app.topo, topology.TaskConfig{
		ApplicationID: o.ApplicationID, ID: id, Collector: r.collector(t), Stores: t.batch,
		WallClock: time.Now().UnixMilli(), Caching: o.CacheBytes > 0, CacheBytes: o.CacheBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	t.task = task
	return t, nil
}

// collector produces a task's output; acknowledged changelog records move
// the task's positions.
func (r *runner) collector(t *runTask) topology.RecordCollector {
	return topology.RecordCollectorFunc(func(o topology.OutputRecord) error {
		rec := &kgo.Record{Topic: o.Topic, Partition: o.Partition, Key: o.Key, Value: o.Value, Timestamp: time.UnixMilli(o.Timestamp)}
		for _, h := range o.Headers {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		changelog := r.changelg[o.Topic]
		r.cl.Produce(context.Background(), rec, func(rec *kgo.Record, err error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if err != nil {
				if r.produceErr == nil {
					r.produceErr = fmt.Errorf("stream: produce to %s: %w", rec.Topic, err)
				}
				return
			}
			if changelog {
				tp := positionName(rec.Topic, rec.Partition)
				t.positions[tp] = max(t.positions[tp], rec.Offset+1)
			}
		})
		return nil
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
		if len(p.Records) == 0 {
			return
		}
		for _, sub := range r.routes[p.Topic] {
			k := taskKey{sub, p.Partition}
			queues[k] = append(queues[k], p.Records)
		}
	})
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
			in := topology.InputRecord{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
				Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp.UnixMilli()}
			for _, h := range rec.Headers {
				in.Headers = append(in.Headers, topology.Header{Key: h.Key, Value: h.Value})
			}
			if err := t.task.Process(in); err != nil {
				return fmt.Errorf("stream: %w", err)
			}
			r.app.metrics.processed.Add(1)
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
	for _, t := range r.tasks {
		if err := t.task.Flush(); err != nil {
			return fmt.Errorf("stream: %w", err)
		}
	}
	if r.sess == nil {
		if err := r.cl.Flush(ctx); err != nil {
			return fmt.Errorf("stream: flush: %w", err)
		}
		if err := r.takeProduceErr(); err != nil {
			return err
		}
		if err := r.cl.CommitUncommittedOffsets(ctx); err != nil {
			return fmt.Errorf("stream: commit offsets: %w", err)
		}
		r.app.metrics.commits.Add(1)
		return r.commitPositions()
	}
	try := kgo.TryCommit
	if r.takeProduceErr() != nil {
		try = kgo.TryAbort
	}
	committed, err := r.sess.End(ctx, try)
	if committed && err == nil {
		r.app.metrics.commits.Add(1)
		if err := r.commitPositions(); err != nil {
			return err
		}
	} else {
		r.app.metrics.aborts.Add(1)
		r.log.Info("stream: transaction aborted; reprocessing from the committed offsets", "err", err)
		r.takeProduceErr()
		r.closeTasks()
		if err := r.ensureTasks(ctx); err != nil {
			return err
		}
	}
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

// commitPositions commits every task's batch with its changelog positions.
func (r *runner) commitPositions() error {
	for _, t := range r.tasks {
		r.mu.Lock()
		pos := t.positions
		t.positions = map[string]int64{}
		r.mu.Unlock()
		if err := t.batch.Commit(pos); err != nil {
			return fmt.Errorf("stream: task %s: %w", t.task.ID(), err)
		}
	}
	return nil
}

// closeTasks closes every task and rolls back its uncommitted writes.
func (r *runner) closeTasks() {
	for k, t := range r.tasks {
		if err := t.task.Close(); err != nil {
			r.log.Warn("stream: close task", "task", t.task.ID(), "err", err)
		}
		if err := t.batch.Rollback(); err != nil {
			r.log.Warn("stream: roll back task", "task", t.task.ID(), "err", err)
		}
		delete(r.tasks, k)
	}
}

// close releases everything the runner holds.
func (r *runner) close() error {
	r.closeTasks()
	if r.sess != nil {
		// A transaction left open would hold read_committed readers back
		// until it timed out. Ending none is a no-op.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r.sess.End(ctx, kgo.TryAbort)
		cancel()
	}
	if r.cl != nil {
		r.cl.CloseAllowingRebalance() // leaving the group is a rebalance
	}
	if r.adm != nil {
		r.adm.Close()
	}
	if r.db != nil {
		return r.db.Close()
	}
	return nil
}
