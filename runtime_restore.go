package runnel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/topology"
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
// this much is restored again), the time a commit takes between two
// turns of the worker's loop (its merge: about 1.6 s of CPU per GB), and
// disk: up to this much in run files per restoring task, and as much
// again in tables while a commit writes them.
const restoreCheckpointBytes = 1 << 30

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
	positions := map[string]int64{}
	for t, o := range rs.next {
		positions[positionName(t, rs.key.part)] = o
	}
	return rs.batch.Commit(positions)
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
	ends, err := r.adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("stream: restore %s: end offsets: %w", id, err)
	}
	rs := &restoration{key: k, batch: batch, stores: stores, next: map[string]int64{}, end: map[string]int64{}}
	for _, t := range topics {
		lo, ok := ends.Lookup(t, id.Partition)
		if !ok {
			return nil, fmt.Errorf("stream: restore %s: end offset of %s[%d]: partition not listed", id, t, id.Partition)
		}
		if lo.Err != nil {
			return nil, fmt.Errorf("stream: restore %s: end offset of %s[%d]: %w", id, t, id.Partition, lo.Err)
		}
		pos, _, err := batch.Position(positionName(t, id.Partition))
		if err != nil {
			return nil, fmt.Errorf("stream: restore %s: %w", id, err)
		}
		rs.next[t], rs.end[t] = pos, lo.Offset
	}
	return rs, nil
}

// beginRestore starts reading rs's changelogs.
func (r *runner) beginRestore(rs *restoration) error {
	if r.rcl == nil {
		cl, err := kgo.NewClient(append(append(r.app.opts.securityOpts(), clientRecoveryOpts()...),
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

// endRestore stops reading rs's changelogs and commits what was applied.
func (r *runner) endRestore(rs *restoration, err error) error {
	delete(r.restoring, rs.key)
	rm := map[string][]int32{}
	for t := range rs.next {
		rm[t] = []int32{rs.key.part}
	}
	r.rcl.RemoveConsumePartitions(rm)
	if err == nil {
		err = rs.commit()
	} else {
		rs.batch.Rollback()
	}
	rs.progress.done(err)
	return err
}

// pollRestore waits at most wait for what the restore consumer has for
// the restoring tasks. It touches no task: the loop calls it without
// taskMu, so a revocation need not wait for the poll.
func (r *runner) pollRestore(ctx context.Context, wait time.Duration) kgo.Fetches {
	pollCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
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
	for k, rs := range r.restoring {
		switch {
		case rs.done():
			if err := r.endRestore(rs, nil); err != nil {
				return err
			}
			if err := r.finishTask(k); err != nil {
				return err
			}
		case rs.batch.Len() >= restoreCheckpointBytes:
			if err := rs.commit(); err != nil {
				return fmt.Errorf("stream: restore %s: %w", k, err)
			}
		}
	}
	return nil
}

// restorationOf returns the restoration reading changelog partition
// topic[part], or nil.
func (r *runner) restorationOf(topic string, part int32) *restoration {
	for k, rs := range r.restoring {
		if k.part == part && rs.stores[topic] != nil {
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
