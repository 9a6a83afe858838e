package runnel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// restoreTimeout bounds the global stores' bootstrap (runtime_global.go).
const restoreTimeout = 5 * time.Minute

// restoreCheckpointBytes is how much a restoration applies (keys and
// values) between two commits of its positions. Its stores restore
// through a bulk batch (pebblestore.DB.NewBulkBatch), which sorts the
// records in memory chunks and spills them to disk, so memory does not
// grow with it; each commit merges what was spilled into sstables and
// ingests them. Fewer commits mean fewer, larger tables that Pebble need
// not compact again: the first lands in the bottom level, and a later one
// overlaps it. The price is what a crash in the middle loses (at most
// this much is restored again), the time a commit takes (its merge: about
// 1.6 s of CPU per GB, on a goroutine of its own while the worker's loop
// goes on, see restoration.startCommit), and disk: up to this much in run
// files per restoring task, and as much again in tables while a commit
// writes them.
var restoreCheckpointBytes = 1 << 30 // a variable for tests

// restoration is a task whose logged stores are being brought up to the
// end of their changelog partitions before it may process (Kafka Streams'
// restoring state). The worker's restore consumer reads the changelogs
// (read_committed) from the positions committed in Pebble between the
// turns of its loop, so the worker's other tasks go on processing. The
// task's input partitions stay paused until it is done.
type restoration struct {
	key      taskKey
	batch    *pebblestore.Batch
	stores   map[string]state.Logged // by changelog topic
	next     map[string]int64        // by changelog topic: next offset to apply
	end      map[string]int64        // by changelog topic: the last stable offset when it began
	progress *restoreProgress
	// pending is the commit under way on a goroutine of its own, nil when
	// none. Meanwhile that goroutine owns batch and stores, and the
	// restoration's changelog partitions are out of the restore consumer.
	pending *restoreCommit
	// failed is the error of a commit that failed: what it held is lost,
	// so nothing more is committed, least of all the positions.
	failed error
}

// restoreCommit is a restoration's commit on a goroutine of its own: the
// merge of what a bulk batch spilled into sstables, and their ingestion,
// take about 1.6 s of CPU per GB, which the worker's loop would
// otherwise spend holding back every other task it runs.
type restoreCommit struct {
	final bool          // the restoration is done: the task starts after it
	done  chan struct{} // closed once err is set
	err   error
	wg    sync.WaitGroup // the goroutine
}

func (rs *restoration) remaining() (n int64) {
	for t, e := range rs.end {
		n += max(e-rs.next[t], 0)
	}
	return n
}

func (rs *restoration) done() bool { return rs.remaining() == 0 }

// commit commits what the restoration applied with its positions.
func (rs *restoration) commit() error {
	return rs.batch.Commit(rs.positions())
}

func (rs *restoration) positions() map[string]int64 {
	positions := map[string]int64{}
	for t, o := range rs.next {
		positions[positionName(t, rs.key.part)] = o
	}
	return positions
}

// partitions returns the changelog partitions rs reads, or read.
func (rs *restoration) partitions() map[string][]int32 {
	ps := map[string][]int32{}
	for t := range rs.next {
		ps[t] = []int32{rs.key.part}
	}
	return ps
}

// startCommit takes rs's changelog partitions out of the restore
// consumer and commits what rs applied on a goroutine of its own, which
// wakes the worker's restore poll when it is done (see
// runner.finishCommits). final says rs is done. REQUIRES: r.taskMu held.
func (r *runner) startCommit(rs *restoration, final bool) {
	r.rcl.RemoveConsumePartitions(rs.partitions())
	positions := rs.positions()
	c := &restoreCommit{final: final, done: make(chan struct{})}
	rs.pending = c
	wake := r.restoreWake()
	hook := r.app.beforeRestoreCommit
	sem := r.inst.restoreCommits
	c.wg.Go(func() {
		if hook != nil {
			hook()
		}
		sem <- struct{}{}
		c.err = rs.batch.Commit(positions)
		<-sem
		close(c.done)
		select {
		case wake <- struct{}{}:
		default: // a wake is already due
		}
	})
}

// join waits for rs's commit under way and returns its result.
func (rs *restoration) join() error {
	c := rs.pending
	rs.pending = nil
	c.wg.Wait()
	return c.err
}

// restoreWake returns the channel that wakes the worker's restore poll.
func (r *runner) restoreWake() chan struct{} {
	if r.worker < len(r.inst.restoreWake) {
		return r.inst.restoreWake[r.worker]
	}
	return nil // a runner without its instance's channels: tests
}

// planRestore opens task k's logged stores and reads where their
// changelogs end and where the state committed in Pebble reaches. It
// returns nil for a task without logged stores.
func (r *runner) planRestore(ctx context.Context, k taskKey) (*restoration, error) {
	id := topology.TaskID{SubTopology: k.sub, Partition: k.part}
	// Restoring stores only write: a bulk batch takes them past Pebble's
	// write-ahead log and memtable into sorted sstables (or, for less
	// than a chunk, into a plain batch).
	batch := r.db.NewBulkBatch(id.String(), pebblestore.BulkOptions{})
	stores, err := loggedStores(r.app.topo, r.app.opts.ApplicationID, batch, id)
	if err != nil || len(stores) == 0 {
		return nil, err
	}
	var topics []string
	for t := range stores {
		topics = append(topics, t)
	}
	ends, err := r.changelogEnds(ctx, id.Partition, topics)
	if err != nil {
		batch.Rollback()
		return nil, fmt.Errorf("stream: restore %s: %w", id, err)
	}
	rs := &restoration{key: k, batch: batch, stores: stores, next: map[string]int64{}, end: ends}
	for _, t := range topics {
		pos, _, err := batch.Position(positionName(t, id.Partition))
		if err != nil {
			batch.Rollback()
			return nil, fmt.Errorf("stream: restore %s: %w", id, err)
		}
		rs.next[t] = pos
	}
	return rs, nil
}

// restoreEndsTimeout bounds how long a task waits to learn where its
// changelogs end. After a broker dies its partitions have no leader until
// the controller fences it, a broker session timeout later (Kafka's
// default is 45 s).
var restoreEndsTimeout = 60 * time.Second

// changelogEnds lists where partition part of each changelog topic ends
// for a read_committed reader (its last stable offset). The errors of a
// changing cluster (a leader moving, a broker down, a topic not yet known
// to the broker asked) are waited out, up to restoreEndsTimeout.
func (r *runner) changelogEnds(ctx context.Context, part int32, topics []string) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, restoreEndsTimeout)
	defer cancel()
	var b backoff
	for {
		ends, err := r.listChangelogEnds(ctx, part, topics)
		if err == nil {
			return ends, nil
		}
		var kerrErr *kerr.Error
		if ctx.Err() != nil || (errors.As(err, &kerrErr) && !kerrErr.Retriable && !errors.Is(err, kerr.UnknownTopicOrPartition)) {
			return nil, err
		}
		r.log.Debug("stream: changelog end offsets", "partition", part, "err", err)
		if !b.wait(ctx) {
			return nil, err
		}
	}
}

// listChangelogEnds is one try of changelogEnds.
func (r *runner) listChangelogEnds(ctx context.Context, part int32, topics []string) (map[string]int64, error) {
	listed, err := r.adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	ends := make(map[string]int64, len(topics))
	for _, t := range topics {
		lo, ok := listed.Lookup(t, part)
		if !ok {
			return nil, fmt.Errorf("end offset of %s[%d]: %w", t, part, kerr.UnknownTopicOrPartition)
		}
		if lo.Err != nil {
			return nil, fmt.Errorf("end offset of %s[%d]: %w", t, part, lo.Err)
		}
		ends[t] = lo.Offset
	}
	return ends, nil
}

// beginRestore starts reading rs's changelogs.
func (r *runner) beginRestore(rs *restoration) error {
	if r.rcl == nil {
		cl, err := kgo.NewClient(append(append(r.app.opts.clientOpts(), clientRecoveryOpts()...),
			kgo.SeedBrokers(r.brokers...),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.KeepControlRecords(), // the next offset passes a marker that ends a partition
			kgo.FetchMaxBytes(64<<20),
			kgo.FetchMaxPartitionBytes(16<<20),
			// Partitions join as tasks start restoring: a long poll
			// would hold the newcomers back.
			kgo.FetchMaxWait(50*time.Millisecond),
		)...)
		if err != nil {
			return fmt.Errorf("stream: restore consumer: %w", err)
		}
		r.rcl = cl
	}
	add := map[string]map[int32]kgo.Offset{}
	for t, o := range rs.next {
		if o < rs.end[t] {
			add[t] = map[int32]kgo.Offset{rs.key.part: kgo.NewOffset().At(o)}
		}
	}
	r.rcl.AddConsumePartitions(add)
	rs.progress = r.restoreProgress(topology.TaskID{SubTopology: rs.key.sub, Partition: rs.key.part}, rs.remaining())
	r.restoring[rs.key] = rs
	return nil
}

// resumeRestore reads rs's changelogs again, from where it is, after a
// commit in the middle of the restoration.
func (r *runner) resumeRestore(rs *restoration) {
	add := map[string]map[int32]kgo.Offset{}
	for t, o := range rs.next {
		if o < rs.end[t] {
			add[t] = map[int32]kgo.Offset{rs.key.part: kgo.NewOffset().At(o)}
		}
	}
	r.rcl.AddConsumePartitions(add)
}

// endRestore stops reading rs's changelogs and commits what was applied,
// waiting for a commit under way rather than starting one.
// REQUIRES: r.taskMu held.
func (r *runner) endRestore(rs *restoration) error {
	delete(r.restoring, rs.key)
	err := rs.failed
	switch {
	case rs.pending != nil:
		err = rs.join()
	case err == nil:
		r.rcl.RemoveConsumePartitions(rs.partitions())
		err = rs.commit()
	}
	rs.progress.done(err)
	return err
}

// pollRestore waits at most wait for what the restore consumer has for
// the restoring tasks, or until a restoration's commit finishes. It
// touches no task: the loop calls it without taskMu, so a revocation need
// not wait for the poll.
func (r *runner) pollRestore(ctx context.Context, wait time.Duration) kgo.Fetches {
	pollCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if wake := r.restoreWake(); wake != nil {
		// With every restoration committing, nothing is consumed and
		// the poll would wait its whole time for nothing.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			select {
			case <-wake:
				cancel()
			case <-stop:
			}
		})
		defer wg.Wait()
		defer close(stop)
	}
	return r.rcl.PollFetches(pollCtx)
}

// applyRestore applies fetches from the restore consumer to the restoring
// tasks, and starts the tasks whose restoration is done. Restorations
// revoked since the poll are skipped. REQUIRES: r.taskMu held.
func (r *runner) applyRestore(fetches kgo.Fetches) error {
	var ferr error
	fetches.EachError(func(t string, p int32, err error) {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && ferr == nil {
			ferr = fmt.Errorf("stream: restore from %s[%d]: %w", t, p, err)
		}
	})
	if ferr != nil {
		return ferr
	}
	touched := map[taskKey]int64{}
	var applyErr error
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if applyErr != nil {
			return
		}
		rs := r.restorationOf(p.Topic, p.Partition)
		if rs == nil {
			return // revoked since
		}
		var n int64
		for _, rec := range p.Records {
			if rec.Offset < rs.next[p.Topic] || rec.Offset >= rs.end[p.Topic] {
				continue
			}
			if !rec.Attrs.IsControl() {
				if err := rs.stores[p.Topic].Restore(rec.Key, rec.Value); err != nil {
					applyErr = fmt.Errorf("stream: restore %s from %s[%d]@%d: %w", rs.key, p.Topic, p.Partition, rec.Offset, err)
					return
				}
				n++
			}
			rs.next[p.Topic] = rec.Offset + 1
		}
		touched[rs.key] += n
	})
	for k, n := range touched {
		rs := r.restoring[k]
		rs.progress.update(n, rs.remaining())
	}
	if applyErr != nil {
		return applyErr
	}
	return r.finishCommits()
}

// finishCommits starts the commits of the restorations that are done, or
// that applied restoreCheckpointBytes since their last commit, and acts
// on those that finished: it starts the tasks of those that were done
// and resumes reading the changelogs of the others. REQUIRES: r.taskMu
// held.
func (r *runner) finishCommits() error {
	for k, rs := range r.restoring {
		if rs.failed != nil {
			continue // the worker stops on the error returned
		}
		if c := rs.pending; c != nil {
			select {
			case <-c.done:
			default:
				continue
			}
			if err := rs.join(); err != nil {
				rs.failed = fmt.Errorf("stream: restore %s: %w", k, err)
				return rs.failed
			}
			if !c.final {
				r.resumeRestore(rs)
				continue
			}
			delete(r.restoring, k)
			rs.progress.done(nil)
			if err := r.finishTask(k); err != nil {
				return err
			}
			continue
		}
		switch {
		case rs.done():
			r.startCommit(rs, true)
		case rs.batch.Len() >= restoreCheckpointBytes:
			r.startCommit(rs, false)
		}
	}
	return nil
}

// restorationOf returns the restoration reading changelog partition
// topic[part], or nil when there is none or it is committing: what was
// fetched for it before its partitions left the restore consumer is read
// again after.
func (r *runner) restorationOf(topic string, part int32) *restoration {
	for k, rs := range r.restoring {
		if k.part == part && rs.stores[topic] != nil {
			if rs.pending != nil {
				return nil
			}
			return rs
		}
	}
	return nil
}

// loggedStores opens the logged stores of task id in batch, by changelog
// topic.
func loggedStores(topo *topology.Topology, app string, batch *pebblestore.Batch, id topology.TaskID) (map[string]state.Logged, error) {
	stores := map[string]state.Logged{}
	for _, name := range topo.SubTopologies()[id.SubTopology].Stores() {
		spec, _ := topo.Store(name)
		if !spec.Logging {
			continue
		}
		var s state.Store
		var err error
		switch spec.Kind {
		case topology.KeyValueStore:
			s, err = batch.KeyValueStore(name)
		case topology.WindowStore:
			s, err = batch.WindowStore(name, spec.Window.EnsureDefaults())
		case topology.SessionStore:
			s, err = batch.SessionStore(name, spec.Session.EnsureDefaults())
		}
		if err != nil {
			return nil, fmt.Errorf("stream: open %s of task %s: %w", name, id, err)
		}
		l, ok := s.(state.Logged)
		if !ok {
			return nil, fmt.Errorf("stream: task %s: store %q cannot restore", id, name)
		}
		stores[topology.ChangelogTopic(app, name)] = l
	}
	return stores, nil
}
