package runnel

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// standbyUpdater keeps the instance's standby tasks warm (Kafka Streams'
// standby replicas): it tails their changelog partitions (read_committed)
// on a goroutine of its own, applies the records to the tasks' local
// stores and commits them with their changelog positions every commit
// interval. When a standby task becomes active here, its worker takes it
// over (take) and restores only what the standby had not read yet.
type standbyUpdater struct {
	in   *instance
	cl   *kgo.Client
	wake chan struct{} // the wanted set changed

	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex        // guards want and err
	want   map[int][]taskKey // standby tasks assigned to each worker
	err    error             // why the updater stopped, if it did
	taskMu sync.Mutex        // held while tasks are applied to, committed or taken
	tasks  map[taskKey]*standbyTask
}

// standbyTask is one standby task's open state.
type standbyTask struct {
	batch  *pebblestore.Batch
	stores map[string]state.Logged // by changelog topic
	next   map[string]int64        // by changelog topic: next offset to apply
	dirty  bool
}

func newStandbyUpdater(in *instance) (*standbyUpdater, error) {
	cl, err := kgo.NewClient(append(append(in.app.opts.clientOpts(), clientRecoveryOpts()...),
		kgo.SeedBrokers(in.brokers...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), // positions pass the markers that end a partition
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return nil, fmt.Errorf("stream: standby client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	u := &standbyUpdater{
		in: in, cl: cl, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}),
		want: map[int][]taskKey{}, tasks: map[taskKey]*standbyTask{},
	}
	in.owners.mu.Lock()
	in.owners.changed = u.poke
	in.owners.mu.Unlock()
	go u.run(ctx)
	return u, nil
}

func (u *standbyUpdater) poke() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// set records worker w's standby tasks from its latest assignment.
func (u *standbyUpdater) set(w int, tasks []taskKey) {
	u.mu.Lock()
	u.want[w] = tasks
	u.mu.Unlock()
	u.poke()
}

// take stops keeping task k as a standby, committing what was applied, so
// that a worker can run it as active. The worker owns k already (see
// taskOwners), so the updater will not pick it up again.
func (u *standbyUpdater) take(k taskKey) error {
	u.taskMu.Lock()
	defer u.taskMu.Unlock()
	return u.dropLocked(k)
}

func (u *standbyUpdater) dropLocked(k taskKey) error {
	t, ok := u.tasks[k]
	if !ok {
		return nil
	}
	delete(u.tasks, k)
	u.in.app.queries.standbyDropped(k)
	rm := map[string][]int32{}
	for topic := range t.next {
		rm[topic] = []int32{k.part}
	}
	u.cl.RemoveConsumePartitions(rm)
	return u.commitTask(k, t)
}

func (u *standbyUpdater) commitTask(k taskKey, t *standbyTask) error {
	if !t.dirty {
		return nil
	}
	pos := map[string]int64{}
	for topic, o := range t.next {
		pos[positionName(topic, k.part)] = o
	}
	if err := t.batch.Commit(pos); err != nil {
		return fmt.Errorf("stream: standby %s: %w", k, err)
	}
	t.dirty = false
	return nil
}

// standbyCount returns how many standby tasks are kept.
func (u *standbyUpdater) standbyCount() int {
	u.taskMu.Lock()
	defer u.taskMu.Unlock()
	return len(u.tasks)
}

func (u *standbyUpdater) run(ctx context.Context) {
	defer close(u.done)
	interval := max(u.in.app.opts.CommitInterval, 10*time.Millisecond) // CommitInterval(0) must not spin
	lastCommit := time.Now()
	for {
		if err := u.reconcile(); err != nil {
			u.fail(err)
			return
		}
		pollCtx, cancel := context.WithTimeout(ctx, interval)
		fetches := u.cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		select {
		case <-u.wake:
			u.poke() // reconcile at the top of the loop
		default:
		}
		if err := u.apply(fetches); err != nil {
			u.fail(err)
			return
		}
		if time.Since(lastCommit) >= interval {
			if err := u.commitAll(); err != nil {
				u.fail(err)
				return
			}
			lastCommit = time.Now()
		}
	}
}

func (u *standbyUpdater) fail(err error) {
	u.in.log.Error("stream: standby updater stopped", "err", err)
	u.mu.Lock()
	u.err = err
	u.mu.Unlock()
}

// reconcile opens the standby tasks wanted and not yet kept, and drops
// those no longer wanted or now active here.
func (u *standbyUpdater) reconcile() error {
	select {
	case <-u.wake:
	default:
		return nil
	}
	u.mu.Lock()
	want := map[taskKey]bool{}
	for _, ts := range u.want {
		for _, k := range ts {
			want[k] = true
		}
	}
	u.mu.Unlock()
	u.taskMu.Lock()
	defer u.taskMu.Unlock()
	// Read under taskMu: a worker acquires a task before it takes it from
	// here (which waits for taskMu), so either we see it active or its
	// take drops what we open now.
	active := u.in.owners.activeOf(-1)
	for k := range maps.Clone(u.tasks) {
		if !want[k] || active[k] {
			if err := u.dropLocked(k); err != nil {
				return err
			}
		}
	}
	add := map[string]map[int32]kgo.Offset{}
	for k := range want {
		if _, ok := u.tasks[k]; ok || active[k] {
			continue
		}
		id := topology.TaskID{SubTopology: k.sub, Partition: k.part}
		batch := u.in.db.NewBatch(id.String())
		stores, err := loggedStores(u.in.app.topo, u.in.app.opts.ApplicationID, batch, id)
		if err != nil {
			batch.Rollback()
			return err
		}
		t := &standbyTask{batch: batch, stores: stores, next: map[string]int64{}}
		for topic := range stores {
			pos, _, err := batch.Position(positionName(topic, k.part))
			if err != nil {
				batch.Rollback()
				return fmt.Errorf("stream: standby %s: %w", k, err)
			}
			t.next[topic] = pos
			if add[topic] == nil {
				add[topic] = map[int32]kgo.Offset{}
			}
			add[topic][k.part] = kgo.NewOffset().At(pos)
		}
		u.tasks[k] = t
		u.in.app.queries.standbyAdded(k) // its committed state, for StaleStores views
	}
	if len(add) > 0 {
		u.cl.AddConsumePartitions(add)
	}
	return nil
}

// apply applies fetched changelog records to the standby tasks that still
// want them.
func (u *standbyUpdater) apply(fetches kgo.Fetches) error {
	u.taskMu.Lock()
	defer u.taskMu.Unlock()
	var err error
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if err != nil {
			return
		}
		sub := -1
		for k, t := range u.tasks {
			if k.part == p.Partition && t.stores[p.Topic] != nil {
				sub = k.sub
				break
			}
		}
		if sub < 0 {
			return // taken or dropped since the fetch
		}
		k := taskKey{sub, p.Partition}
		t := u.tasks[k]
		for _, rec := range p.Records {
			if rec.Offset < t.next[p.Topic] {
				continue
			}
			if !rec.Attrs.IsControl() {
				if err = t.stores[p.Topic].Restore(rec.Key, rec.Value); err != nil {
					err = fmt.Errorf("stream: standby %s: %w", k, err)
					return
				}
				u.in.app.metrics.standby.Add(1)
			}
			t.next[p.Topic] = rec.Offset + 1
			t.dirty = true
		}
	})
	return err
}

func (u *standbyUpdater) commitAll() error {
	u.taskMu.Lock()
	defer u.taskMu.Unlock()
	for k, t := range u.tasks {
		if err := u.commitTask(k, t); err != nil {
			return err
		}
	}
	return nil
}

// close stops the updater, committing what it applied.
func (u *standbyUpdater) close() error {
	u.cancel()
	<-u.done
	u.taskMu.Lock()
	defer u.taskMu.Unlock()
	var err error
	for k := range maps.Clone(u.tasks) {
		if e := u.dropLocked(k); e != nil && err == nil {
			err = e
		}
	}
	u.cl.Close()
	u.mu.Lock()
	defer u.mu.Unlock()
	if err == nil {
		err = u.err
	}
	return err
}
