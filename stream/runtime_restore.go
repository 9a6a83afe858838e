package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// restoreTimeout bounds one task's restoration.
const restoreTimeout = 5 * time.Minute

// restore brings the logged stores of task id up to the end of their
// changelog partitions: it reads each changelog (read_committed) from the
// position committed in Pebble — offset 0 for a store never committed —
// to the last stable offset, applies the records, and commits the new
// positions with them. A store whose position is the end needs no reading.
func (r *runner) restore(ctx context.Context, id topology.TaskID) error {
	batch := r.db.NewBatch(id.String())
	stores, err := loggedStores(r.app.topo, r.app.opts.ApplicationID, batch, id)
	if err != nil {
		return err
	}
	if len(stores) == 0 {
		return nil
	}
	var topics []string
	for t := range stores {
		topics = append(topics, t)
	}
	ends, err := r.adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("stream: restore %s: end offsets: %w", id, err)
	}
	next := map[string]int64{} // by topic
	end := map[string]int64{}  // by topic
	read := map[string]map[int32]kgo.Offset{}
	for _, t := range topics {
		lo, ok := ends.Lookup(t, id.Partition)
		if !ok {
			return fmt.Errorf("stream: restore %s: end offset of %s[%d]: partition not listed", id, t, id.Partition)
		}
		if lo.Err != nil {
			return fmt.Errorf("stream: restore %s: end offset of %s[%d]: %w", id, t, id.Partition, lo.Err)
		}
		pos, _, err := batch.Position(positionName(t, id.Partition))
		if err != nil {
			return fmt.Errorf("stream: restore %s: %w", id, err)
		}
		next[t], end[t] = pos, lo.Offset
		if pos < lo.Offset {
			read[t] = map[int32]kgo.Offset{id.Partition: kgo.NewOffset().At(pos)}
		}
	}
	if len(read) > 0 {
		err := r.readChangelogs(ctx, id, read, stores, next, end)
		if err != nil {
			return fmt.Errorf("stream: restore %s: %w", id, err)
		}
	}
	positions := map[string]int64{}
	for t, o := range next {
		positions[positionName(t, id.Partition)] = o
	}
	if err := batch.Commit(positions); err != nil {
		return fmt.Errorf("stream: restore %s: %w", id, err)
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

// readChangelogs applies the records of read to stores until each
// partition's next offset reaches its end, reporting its progress for
// task id (log lines and metrics).
// Control records are read too (kgo.KeepControlRecords), so that the next
// offset passes a transaction marker that ends a partition.
func (r *runner) readChangelogs(ctx context.Context, id topology.TaskID, read map[string]map[int32]kgo.Offset, stores map[string]state.Logged, next, end map[string]int64) (err error) {
	remaining := func() (n int64) {
		for t, e := range end {
			n += max(e-next[t], 0)
		}
		return n
	}
	progress := r.restoreProgress(id, remaining())
	defer func() { progress.done(err) }()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(r.brokers...),
		kgo.ConsumePartitions(read),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(64<<20),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, restoreTimeout)
	defer cancel()
	pending := len(read)
	for pending > 0 {
		fetches := cl.PollFetches(ctx)
		if err := fetches.Err0(); err != nil {
			return err
		}
		var n int64
		var applyErr error
		fetches.EachRecord(func(rec *kgo.Record) {
			if applyErr != nil || rec.Offset < next[rec.Topic] {
				return
			}
			if rec.Offset >= end[rec.Topic] {
				return
			}
			if !rec.Attrs.IsControl() {
				if err := stores[rec.Topic].Restore(rec.Key, rec.Value); err != nil {
					applyErr = err
					return
				}
				n++
			}
			was := next[rec.Topic] < end[rec.Topic]
			next[rec.Topic] = rec.Offset + 1
			if was && next[rec.Topic] >= end[rec.Topic] {
				pending--
			}
		})
		progress.update(n, remaining())
		if applyErr != nil {
			return applyErr
		}
	}
	return nil
}
