package runnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Global stores (GlobalTable, topology.AddGlobalStore) are kept by a
// globalUpdater, Kafka Streams' GlobalStreamThread:
//
//   - Start bootstraps them before any task runs: it reads every partition
//     of their source topics (read_committed) from the position committed
//     in Pebble up to the end offsets listed at start, through the global
//     processors. A fresh instance reads the topics from offset 0; a
//     restarted one only the tail it has not seen.
//   - Then a goroutine of the updater's own keeps reading the topics with a
//     consumer of its own (partitions assigned by hand, no group) and
//     applies the records the same way.
//
// The stores live in the instance's Pebble DB under the task name
// globalTaskName, and the updater commits its writes together with the
// position of each source partition (the offset after the last record
// applied) in one Pebble batch, at most every globalCommitInterval. Nothing
// is changelogged: the source topic is the store's changelog.
//
// Consistency. Tasks read the global stores through read-only views that
// read the committed data of the DB, never the updater's batch, so reads are
// safe while the updater writes on its goroutine. A task sees a global store
// as of the updater's latest commit: a record applied by the updater shows
// up in tasks within globalCommitInterval, and reads of the global store are
// not aligned with the stream time of the records a task processes (as in
// Kafka Streams, where a GlobalKTable is updated asynchronously). Each Get
// reads the latest commit; an iterator sees the commit current when it was
// opened, to its end.
//
// Errors. A record the global source cannot deserialize stops the
// application with an error naming its topic, partition and offset
// (wrapping topology.ErrDeserialization): the runtime's deserialization
// policy is to fail. Its position is not committed, so nothing is lost: a
// restart reads it again. During the bootstrap the error is Start's; later
// it stops processing and is App.Err's.

// globalTaskName is the Pebble task name of the global stores and of their
// source positions. Tasks are named "<sub-topology>_<partition>", so it
// cannot clash with one.
const globalTaskName = "global"

// globalCommitInterval bounds how long an update applied by the updater
// stays invisible to tasks (and unsaved): the updater commits its batch at
// most this long after applying a record, or the commit interval if it is
// shorter.
const globalCommitInterval = 100 * time.Millisecond

// globalBatchBytes is how large the updater lets its uncommitted batch grow
// during the bootstrap before committing it, to bound memory.
const globalBatchBytes = 16 << 20

// errGlobalReadOnly is returned by writes to a global store from a task.
var errGlobalReadOnly = errors.New("stream: global stores are read-only in tasks")

// globalUpdater keeps an instance's global stores up to date; see above.
type globalUpdater struct {
	log      *slog.Logger
	metrics  *appMetrics
	topo     *topology.Topology
	db       *pebblestore.DB
	stores   []string // the global stores' names
	interval time.Duration
	handler  DeserializationHandler
	brokers  []string
	hold     func() bool // App.holdGlobal
	dlq      *kgo.Client // producer for the handler's records, made on first use
	sec      []kgo.Opt   // the app's TLS and SASL options, for dlq

	// Owned by startGlobal, then by the goroutine running run, then by
	// close once that goroutine has ended.
	cl    *kgo.Client
	batch *pebblestore.Batch // the global stores' writes
	task  *topology.Task     // the global sub-topology
	next  map[string]int64   // position name -> next offset to apply
	dirty bool               // batch or positions hold something uncommitted

	cancel context.CancelFunc // stops run; nil if it never started
	done   chan struct{}      // closed when run returns

	mu    sync.Mutex // guards the following
	err   error      // why the updater stopped, sticky
	binds []context.CancelFunc
}

// startGlobal opens the global stores of r's topology, bootstraps them and
// starts keeping them up to date. It returns nil if the topology has no
// global stores. r.db and r.parts must be ready.
func startGlobal(ctx context.Context, r *instance) (*globalUpdater, error) {
	topo, o := r.app.topo, r.app.opts
	g := topo.Global()
	if g == nil {
		return nil, nil
	}
	u := &globalUpdater{
		log: r.log, metrics: &r.app.metrics, topo: topo, db: r.db, stores: g.Stores(),
		interval: min(o.CommitInterval, globalCommitInterval), handler: o.DeserializationHandler, brokers: r.brokers, hold: r.app.holdGlobal,
		batch: r.db.NewBatch(globalTaskName), next: map[string]int64{},
	}
	fail := func(err error) (*globalUpdater, error) {
		u.release()
		return nil, err
	}
	u.sec = o.clientOpts()
	task, err := topology.NewGlobalTask(topo, topology.TaskConfig{
		ApplicationID: o.ApplicationID, Collector: noOutput{}, Stores: u.batch, WallClock: time.Now().UnixMilli(),
	})
	if err != nil {
		return fail(fmt.Errorf("stream: global stores: %w", err))
	}
	u.task = task
	var topics []string
	start := map[string]map[int32]kgo.Offset{}
	for _, t := range g.SourceTopics() {
		name := topo.TopicName(o.ApplicationID, t)
		topics = append(topics, name)
		start[name] = map[int32]kgo.Offset{}
		for p := range int32(r.parts.Topics[name]) {
			pos, _, err := u.batch.Position(positionName(name, p))
			if err != nil {
				return fail(fmt.Errorf("stream: global stores: %w", err))
			}
			u.next[positionName(name, p)] = pos
			start[name][p] = kgo.NewOffset().At(pos)
		}
	}
	ends, err := r.adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return fail(fmt.Errorf("stream: global stores: end offsets: %w", err))
	}
	end := map[string]int64{}
	for name, parts := range start {
		for p := range parts {
			lo, ok := ends.Lookup(name, p)
			if !ok || lo.Err != nil {
				return fail(fmt.Errorf("stream: global stores: end offset of %s[%d]: %v", name, p, lo.Err))
			}
			end[positionName(name, p)] = lo.Offset
		}
	}
	if u.cl, err = kgo.NewClient(append(append(o.clientOpts(), clientRecoveryOpts()...),
		kgo.SeedBrokers(r.brokers...),
		kgo.ConsumePartitions(start),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records move the positions past transaction markers, so
		// a partition whose last record is a marker is seen to be at its end.
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(64<<20),
	)...); err != nil {
		return fail(fmt.Errorf("stream: global stores: %w", err))
	}
	if err := u.bootstrap(ctx, end); err != nil {
		return fail(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	u.cancel, u.done = cancel, make(chan struct{})
	go u.run(runCtx)
	return u, nil
}

// noOutput is the global task's RecordCollector: global processors only
// write their stores.
type noOutput struct{}

func (noOutput) Send(o topology.OutputRecord) error {
	return fmt.Errorf("stream: global store processors cannot send records (to %s)", o.Topic)
}

// bootstrap applies records until every source partition's position reaches
// end, committing as it goes.
func (u *globalUpdater) bootstrap(ctx context.Context, end map[string]int64) error {
	began := time.Now()
	pending := 0
	for tp, e := range end {
		if u.next[tp] < e {
			pending++
		}
	}
	ctx, cancel := context.WithTimeout(ctx, restoreTimeout)
	defer cancel()
	var n int64
	for pending > 0 {
		fetches := u.cl.PollRecords(ctx, 10_000)
		if err := fetches.Err0(); err != nil {
			return fmt.Errorf("stream: global stores: bootstrap: %w", err)
		}
		var read int64
		var err error
		fetches.EachRecord(func(rec *kgo.Record) {
			if err != nil {
				return
			}
			tp := positionName(rec.Topic, rec.Partition)
			was := u.next[tp] < end[tp]
			var data bool
			if data, err = u.apply(rec); data {
				read++
			}
			if was && u.next[tp] >= end[tp] {
				pending--
			}
		})
		n += read
		u.metrics.restored.Add(read)
		if err == nil && u.batch.Len() >= globalBatchBytes {
			err = u.commit()
		}
		if err != nil {
			u.log.Error("stream: global stores: bootstrap failed", "records", n, "err", err)
			return err
		}
	}
	if err := u.commit(); err != nil {
		return err
	}
	u.log.Info("stream: global stores bootstrapped", "stores", u.stores, "records", n, "took", time.Since(began))
	return nil
}

// apply runs rec through the global processors, unless it is a control
// record, and moves its partition's position past it. It reports whether
// rec was a data record.
// skip asks the deserialization handler about a global record: nil to go
// on without it, else the error to stop with.
func (u *globalUpdater) skip(rec *kgo.Record, err error) error {
	h := u.handler
	if h == nil {
		h = LogAndFail
	}
	var produceErr error
	produce := func(rec *kgo.Record) { produceErr = errors.Join(produceErr, u.produce(rec)) }
	ctx := ErrorContext{TaskID: topology.TaskID{SubTopology: -1, Partition: rec.Partition}, Logger: u.log, produce: produce}
	if h.HandleDeserializationError(ctx, rec, err) != Continue {
		return err
	}
	if produceErr != nil {
		return errors.Join(err, produceErr) // a dead letter not written: keep the record
	}
	u.log.Warn("stream: skipping a global record that cannot be deserialized",
		"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
	u.metrics.deserErrors.Add(1)
	u.metrics.prom.deserErrors.WithLabelValues("global").Inc()
	return nil
}

// produce sends a record for the deserialization handler. The global
// stores have no transaction: the record is written at least once, and
// before the position that skips its source is committed.
func (u *globalUpdater) produce(rec *kgo.Record) error {
	if u.dlq == nil {
		cl, err := kgo.NewClient(append(append(u.sec, clientRecoveryOpts()...), kgo.SeedBrokers(u.brokers...), kgo.RecordPartitioner(partitioner{def: kgo.StickyKeyPartitioner(nil)}))...)
		if err != nil {
			return fmt.Errorf("stream: global stores: producer for the deserialization handler: %w", err)
		}
		u.dlq = cl
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := u.dlq.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("stream: global stores: produce to %s for the deserialization handler: %w", rec.Topic, err)
	}
	return nil
}

func (u *globalUpdater) apply(rec *kgo.Record) (bool, error) {
	tp := positionName(rec.Topic, rec.Partition)
	if rec.Offset < u.next[tp] {
		return false, nil // already applied (a fetch may start before the position)
	}
	data := !rec.Attrs.IsControl()
	if data {
		in := topology.InputRecord{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
			Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp.UnixMilli()}
		for _, h := range rec.Headers {
			in.Headers = append(in.Headers, topology.Header{Key: h.Key, Value: h.Value})
		}
		if err := u.task.Process(in); err != nil {
			err = fmt.Errorf("stream: global stores: record %s[%d] at offset %d: %w", rec.Topic, rec.Partition, rec.Offset, err)
			if !errors.Is(err, topology.ErrDeserialization) {
				return false, err
			}
			if err := u.skip(rec, err); err != nil {
				return false, err
			}
		}
	}
	u.next[tp] = rec.Offset + 1
	u.dirty = true
	return data, nil
}

// commit writes the applied records and the positions they reach to Pebble.
func (u *globalUpdater) commit() error {
	if err := u.task.Flush(); err != nil {
		return fmt.Errorf("stream: global stores: %w", err)
	}
	if err := u.batch.Commit(maps.Clone(u.next)); err != nil {
		return fmt.Errorf("stream: global stores: %w", err)
	}
	u.dirty = false
	return nil
}

// run keeps the stores up to date until ctx is done or an error, then
// commits what it applied. An error is kept for close and cancels the
// contexts bind made, which stops the application.
func (u *globalUpdater) run(ctx context.Context) {
	defer close(u.done)
	err := u.follow(ctx)
	if err == nil && u.dirty {
		err = u.commit()
	}
	if err == nil {
		return
	}
	u.log.Error("stream: global stores: updates stopped", "err", err)
	if rerr := u.batch.Rollback(); rerr != nil {
		u.log.Warn("stream: global stores: roll back", "err", rerr)
	}
	u.mu.Lock()
	u.err = err
	binds := u.binds
	u.binds = nil
	u.mu.Unlock()
	for _, cancel := range binds {
		cancel()
	}
}

// follow applies records as they come until ctx is done (nil) or an error.
func (u *globalUpdater) follow(ctx context.Context) error {
	lastCommit := time.Now()
	for {
		if u.hold != nil && u.hold() {
			// A test holds the updates back: look again soon.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Millisecond):
			}
			continue
		}
		// While something is uncommitted, poll no longer than until the
		// commit is due, so that updates become visible when input stops.
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if u.dirty {
			pollCtx, cancel = context.WithTimeout(ctx, max(time.Until(lastCommit.Add(u.interval)), time.Millisecond))
		}
		fetches := u.cl.PollRecords(pollCtx, 10_000)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		var err error
		fetches.EachError(func(t string, p int32, ferr error) {
			if err == nil && !errors.Is(ferr, context.Canceled) && !errors.Is(ferr, context.DeadlineExceeded) {
				err = fmt.Errorf("stream: global stores: fetch %s[%d]: %w", t, p, ferr)
			}
		})
		fetches.EachRecord(func(rec *kgo.Record) {
			if err == nil {
				_, err = u.apply(rec)
			}
		})
		if err != nil {
			return err
		}
		now := time.Now()
		if err := u.task.AdvanceWallClock(now.UnixMilli()); err != nil {
			return fmt.Errorf("stream: global stores: %w", err)
		}
		if u.dirty && now.Sub(lastCommit) >= u.interval {
			if err := u.commit(); err != nil {
				return err
			}
			lastCommit = now
		}
	}
}

// bind returns a context derived from ctx that is cancelled if the updater
// fails, so that the processing loop running under it stops. Safe on a nil
// updater (no global stores): ctx itself.
func (u *globalUpdater) bind(ctx context.Context) context.Context {
	if u == nil {
		return ctx
	}
	ctx, cancel := context.WithCancel(ctx)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		cancel()
	} else {
		u.binds = append(u.binds, cancel)
	}
	return ctx
}

// view opens read-only views of the global stores for one task. They read
// the DB's committed data through a Pebble batch of their own, so a view
// belongs to the goroutine running its task, like the task's own stores,
// and never races with the updater. nil without global stores.
func (u *globalUpdater) view() (map[string]state.Store, error) {
	if u == nil {
		return nil, nil
	}
	b := u.db.NewBatch(globalTaskName)
	out := make(map[string]state.Store, len(u.stores))
	for _, name := range u.stores {
		spec, _ := u.topo.Store(name)
		switch spec.Kind {
		case topology.KeyValueStore:
			out[name] = readOnlyKV{b.OpenKeyValueStore(name)}
		case topology.WindowStore:
			w, err := b.OpenWindowStore(name, spec.Window.EnsureDefaults())
			if err != nil {
				return nil, fmt.Errorf("stream: global store %q: %w", name, err)
			}
			out[name] = readOnlyWindow{w}
		case topology.SessionStore:
			s, err := b.OpenSessionStore(name, spec.Session.EnsureDefaults())
			if err != nil {
				return nil, fmt.Errorf("stream: global store %q: %w", name, err)
			}
			out[name] = readOnlySession{s}
		}
	}
	return out, nil
}

// close stops the updater, committing what it applied, and returns the
// error it failed with, if any. Safe on a nil updater.
func (u *globalUpdater) close() error {
	if u == nil {
		return nil
	}
	if u.cancel != nil {
		u.cancel()
		<-u.done
	}
	u.release()
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, cancel := range u.binds {
		cancel()
	}
	u.binds = nil
	return u.err
}

// release closes the task and the client. Uncommitted writes are dropped.
func (u *globalUpdater) release() {
	if u.task != nil {
		if err := u.task.Close(); err != nil {
			u.log.Warn("stream: global stores: close", "err", err)
		}
		u.task = nil
	}
	if u.cl != nil {
		u.cl.Close()
		u.cl = nil
	}
	if u.dlq != nil {
		u.dlq.Close()
		u.dlq = nil
	}
}
