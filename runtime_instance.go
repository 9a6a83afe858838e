package runnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// instance is what the workers of one App instance (one process, one state
// directory) share: the admin client, the Pebble database holding every
// local task's state, the topology's topics, which worker runs which task,
// and the standby replicas. Each worker (runner) is a group member of its
// own, as each of Kafka Streams' StreamThreads is.
type instance struct {
	app      *App
	log      *slog.Logger
	brokers  []string
	process  string // the instance id, kept in the state directory
	adm      *kadm.Client
	db       *pebblestore.DB
	parts    topology.Partitions
	routes   map[string][]int // full source topic -> sub-topologies reading it
	changelg map[string]bool  // full changelog topic names
	subs     [][]string       // full source topics of each sub-topology
	stateful []bool           // by sub-topology: has logged stores
	align    []int            // by sub-topology: its alignment group, -1 for none (runtime_align.go)
	owners   *taskOwners
	standby  *standbyUpdater
	global   *globalUpdater // nil without global stores (runtime_global.go)
	// commitAsked, by worker, asks for a commit at the worker's next turn
	// (WaitIdle, app_idle.go).
	commitAsked []atomic.Bool
	// restoreWake, by worker, tells the worker's restore poll that a
	// restoration's commit finished (runtime_restore.go): with every
	// restoration committing, the poll has nothing to read and would
	// otherwise wait out its timeout.
	restoreWake []chan struct{}
	// restoreCommits bounds the restorations' commits under way at once
	// (a slot each): a restore's tasks tend to finish together, and their
	// merges, writing and syncing sstables, did better one at a time on
	// 2 cores (bench/README.md) than all at once.
	restoreCommits chan struct{}
}

func newInstance(ctx context.Context, a *App, brokers []string, dir, process string) (*instance, error) {
	o := a.opts
	in := &instance{
		app: a, log: o.Logger, brokers: brokers, process: process,
		routes: map[string][]int{}, changelg: map[string]bool{}, owners: newTaskOwners(),
		commitAsked:    make([]atomic.Bool, o.NumWorkers),
		restoreWake:    make([]chan struct{}, o.NumWorkers),
		restoreCommits: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)),
	}
	for i := range in.restoreWake {
		in.restoreWake[i] = make(chan struct{}, 1)
	}
	// A short metadata min age: kadm answers from kgo's metadata cache,
	// which otherwise keeps a topic just created as missing for 5 s
	// (waitTopics polls it; restore lists the changelogs' offsets).
	admCl, err := kgo.NewClient(append(append(o.clientOpts(), clientRecoveryOpts()...), kgo.SeedBrokers(brokers...))...)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	in.adm = kadm.NewClient(admCl)
	fail := func(err error) (*instance, error) {
		in.close()
		return nil, err
	}
	if in.parts, err = ensureTopics(ctx, in.adm, a.topo, o.ApplicationID, o.SourcePartitions, o.SinkPartitions, int16(o.ReplicationFactor)); err != nil {
		return fail(err)
	}
	if err := ensureHandlerTopics(ctx, in.adm, o, in.parts); err != nil {
		return fail(err)
	}
	for _, s := range a.topo.SubTopologies() {
		var full []string
		for _, t := range s.SourceTopics() {
			name := a.topo.TopicName(o.ApplicationID, t)
			full = append(full, name)
			in.routes[name] = append(in.routes[name], s.ID())
		}
		in.subs = append(in.subs, full)
		logged := false
		for _, name := range s.Stores() {
			if spec, _ := a.topo.Store(name); spec.Logging {
				logged = true
			}
		}
		in.stateful = append(in.stateful, logged)
	}
	in.align = alignGroups(a.topo)
	for _, it := range in.parts.Internal {
		if it.Kind == topology.Changelog {
			in.changelg[it.Name] = true
		}
	}
	// Sync: Pebble keeps unsynced WAL writes in its own buffer, not the
	// kernel's, so without it a SIGKILLed process loses its committed
	// changelog positions and restores the whole changelog.
	// One fsync per task per commit interval.
	if in.db, err = pebblestore.Open(filepath.Join(dir, "pebble"), pebblestore.Options{Sync: true, Logger: a.opts.Logger}); err != nil {
		return fail(fmt.Errorf("stream: %w", err))
	}
	if in.global, err = startGlobal(ctx, in); err != nil { // before any task runs
		return fail(err)
	}
	if o.StandbyReplicas > 0 {
		if in.standby, err = newStandbyUpdater(in); err != nil {
			return fail(err)
		}
	}
	a.queries.attach(in.db, in.adm, process)
	return in, nil
}

// topics returns every source topic of the application.
func (in *instance) topics() []string {
	var out []string
	for _, sub := range in.subs {
		out = append(out, sub...)
	}
	return out
}

// memberInfo describes worker w for the group leader: the process, its
// endpoint and the local state of every stateful task.
func (in *instance) memberInfo(w int) memberInfo {
	m := memberInfo{Version: memberInfoVersion, Process: in.process, Endpoint: in.app.opts.ApplicationServer, State: map[string]int64{}}
	active := in.owners.activeOf(w)
	for s, n := range in.parts.Tasks {
		if !in.stateful[s] {
			continue
		}
		for p := range int32(n) {
			k := taskKey{s, p}
			if active[k] {
				m.State[k.String()] = caughtUp
				continue
			}
			if sum, ok := in.positionSum(k); ok {
				m.State[k.String()] = sum
			}
		}
	}
	return m
}

// positionSum returns the sum of the changelog positions committed for
// task k's stores, and whether any is.
func (in *instance) positionSum(k taskKey) (int64, bool) {
	topo, app := in.app.topo, in.app.opts.ApplicationID
	var sum int64
	found := false
	for _, name := range topo.SubTopologies()[k.sub].Stores() {
		if spec, _ := topo.Store(name); !spec.Logging {
			continue
		}
		pos, ok, err := in.db.Position(k.String(), positionName(topology.ChangelogTopic(app, name), k.part))
		if err != nil || !ok {
			continue
		}
		sum += pos
		found = true
	}
	return sum, found
}

// close releases what the instance holds; its workers are closed first.
func (in *instance) close() error {
	in.app.queries.detach()  // waits for the queries reading the database
	err := in.global.close() // the error the global stores' updates stopped with
	if in.standby != nil {
		err = errors.Join(err, in.standby.close())
	}
	if in.adm != nil {
		in.adm.Close()
	}
	if in.db != nil {
		err = errors.Join(err, in.db.Close())
	}
	return err
}

// taskOwners records which worker of the instance runs which task, so
// that a task's state is used by one worker at a time: with the
// cooperative protocol a task moving between two workers of one process is
// revoked from the first before the second is given it, but the second
// must not open the task's state before the first has closed it.
type taskOwners struct {
	mu       sync.Mutex
	active   map[taskKey]int           // worker running each task
	released map[taskKey]chan struct{} // closed when the task is released
	changed  func()                    // called after a release; may be nil
}

func newTaskOwners() *taskOwners {
	return &taskOwners{active: map[taskKey]int{}, released: map[taskKey]chan struct{}{}}
}

// acquireTimeout bounds how long a worker waits for another to let go of a
// task.
const acquireTimeout = 30 * time.Second

// acquire makes worker w the task's owner, waiting for its present owner
// to release it.
func (o *taskOwners) acquire(ctx context.Context, k taskKey, w int) error {
	ctx, cancel := context.WithTimeout(ctx, acquireTimeout)
	defer cancel()
	for {
		o.mu.Lock()
		cur, ok := o.active[k]
		if !ok || cur == w {
			o.active[k] = w
			o.mu.Unlock()
			return nil
		}
		ch := o.released[k]
		if ch == nil {
			ch = make(chan struct{})
			o.released[k] = ch
		}
		o.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("stream: task %s: worker %d did not release it: %w", k, cur, ctx.Err())
		}
	}
}

// release gives up worker w's ownership of the task.
func (o *taskOwners) release(k taskKey, w int) {
	o.mu.Lock()
	if cur, ok := o.active[k]; ok && cur == w {
		delete(o.active, k)
		if ch := o.released[k]; ch != nil {
			close(ch)
			delete(o.released, k)
		}
	}
	changed := o.changed
	o.mu.Unlock()
	if changed != nil {
		changed()
	}
}

// activeOf returns the tasks worker w runs; w < 0 returns every worker's.
func (o *taskOwners) activeOf(w int) map[taskKey]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[taskKey]bool{}
	for k, cur := range o.active {
		if w < 0 || cur == w {
			out[k] = true
		}
	}
	return out
}
