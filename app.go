package runnel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-dev/runnel/topology"
)

// App runs a topology as an application over a Kafka-protocol log: one
// consumer group per application id, a task per (sub-topology, partition),
// Pebble state backed by changelog topics, and commits under the chosen
// processing guarantee (see ExactlyOnce and AtLeastOnce). It is Kafka
// Streams' KafkaStreams.
//
// An App runs once: Start (or Run) then Close.
type App struct {
	topo *topology.Topology
	opts AppOptions

	mu      sync.Mutex // guards the following
	started bool
	// stopStart cancels a Start under way and starting is closed when it
	// returns, so that Close called during Start stops what Start made.
	stopStart context.CancelFunc
	starting  chan struct{}
	cancel    context.CancelFunc
	done      chan struct{} // closed when the processing goroutine returns
	err       error         // why processing stopped
	brokers   []string
	emb       *embedded
	inst      *instance
	// metricsSrv serves the metrics (MetricsAddr) from Start to Close.
	metricsSrv *metricsServer

	metrics appMetrics

	// queries is what interactive queries know of the runner (app_query.go).
	queries queryState
	// holdRestore, set by tests before Start, holds restorations back
	// while it returns true.
	holdRestore func() bool
	// beforeRestoreCommit, set by tests before Start, is called before a
	// restoration commits, where the commit runs.
	beforeRestoreCommit func()
	// holdGlobal, set by tests before Start, holds the global store
	// updater's updates back (after its bootstrap) while it returns true.
	holdGlobal func() bool
	// pauseInput, set by tests before Start, is called by the workers'
	// loops each turn: they pause and resume the input partitions it
	// returns, to make a task stall.
	pauseInput func() (pause, resume map[string][]int32)
	// Set by tests before Start: holdBehind replaces maxHoldBehind
	// (runtime_queue.go); queued is called by the workers' loops each turn
	// with the records their tasks hold queued, revokedQueued with those a
	// revocation dropped.
	holdBehind    time.Duration
	queued        func(n int)
	revokedQueued func(n int)
	// abortCommit, set by tests before Start, is asked before each
	// transaction that commits offsets: true aborts it.
	abortCommit func() bool
	// loseEndAnswer, set by tests before Start, is asked after each
	// transaction that committed offsets: true takes its End as failed,
	// as when the coordinator committed and its answer was lost.
	loseEndAnswer func() bool
	// loseProducedEndAnswer is loseEndAnswer for the transactions that
	// consumed nothing (commitProduced).
	loseProducedEndAnswer func() bool

	stateMu  sync.Mutex   // serializes state changes and their listener calls
	state    atomic.Int32 // a State
	settling map[int]bool // workers not yet running all their tasks; guarded by stateMu
}

// Metrics is a snapshot of an App's counters.
type Metrics struct {
	// RecordsProcessed counts the input records the tasks processed,
	// including records processed again after an aborted transaction.
	RecordsProcessed int64
	// RecordsRestored counts the changelog records read to restore stores.
	RecordsRestored int64
	// Commits and Aborts count committed and aborted commit attempts; a
	// commit is counted once the changelog positions it covers are
	// durable in the local state.
	Commits, Aborts int64
	// TasksClosed counts the active tasks closed: revoked, lost, or
	// closed to roll back an aborted transaction.
	TasksClosed int64
	// StandbyRecords counts the changelog records standby tasks applied.
	StandbyRecords int64
	// ActiveTasks and StandbyTasks are the tasks the instance runs now.
	ActiveTasks, StandbyTasks int
	// DroppedRecords counts the records processors dropped: late records
	// past a window's grace period, invalid timestamps, null keys.
	DroppedRecords int64
	// DeserializationErrors counts the input records skipped (or sent to a
	// dead-letter topic) by the deserialization error handler.
	DeserializationErrors int64
	// ProductionErrors counts the output records skipped by the production
	// error handler.
	ProductionErrors int64
	// WorkerReplacements counts the workers replaced after a failure
	// (UncaughtError(ReplaceWorker)).
	WorkerReplacements int64
}

// ErrAppStarted is returned by Start or Run on an App already started.
var ErrAppStarted = errors.New("stream: app already started")

// NewApp returns an application running topo. It checks the options; it
// does no IO until Start or Run.
func NewApp(topo *topology.Topology, opts ...AppOption) (*App, error) {
	a := &App{topo: topo}
	for _, o := range opts {
		o.apply(&a.opts)
	}
	a.opts.EnsureDefaults()
	if err := a.opts.Validate(); err != nil {
		return nil, err
	}
	if err := a.initMetrics(); err != nil {
		return nil, err
	}
	return a, nil
}

// Options returns the options in force.
func (a *App) Options() AppOptions { return a.opts }

// Metrics returns the application's counters.
func (a *App) Metrics() Metrics {
	a.mu.Lock()
	inst := a.inst
	a.mu.Unlock()
	var active, standby int
	if inst != nil {
		active = len(inst.owners.activeOf(-1))
		if inst.standby != nil {
			standby = inst.standby.standbyCount()
		}
	}
	return Metrics{
		RecordsProcessed: a.metrics.processed.Load(),
		RecordsRestored:  a.metrics.restored.Load(),
		Commits:          a.metrics.commits.Load(),
		Aborts:           a.metrics.aborts.Load(),
		TasksClosed:      a.metrics.closed.Load(),
		StandbyRecords:   a.metrics.standby.Load(),
		ActiveTasks:      active,
		StandbyTasks:     standby,

		DroppedRecords:        a.metrics.dropped.Load(),
		DeserializationErrors: a.metrics.deserErrors.Load(),
		ProductionErrors:      a.metrics.prodErrors.Load(),
		WorkerReplacements:    a.metrics.replacements.Load(),
	}
}

// Brokers returns the bootstrap servers in use: those given, or the
// embedded broker's address once Start has returned.
func (a *App) Brokers() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.brokers...)
}

// RegistryURL returns the base URL of the application's schema registry
// (the Confluent Schema Registry API): the one SchemaRegistryURL gave, or
// else the embedded broker's ("http://127.0.0.1:PORT") once Start has
// returned. It is "" when there is none: the App uses bootstrap servers
// given to it and no SchemaRegistryURL, or EmbeddedRegistry(false).
func (a *App) RegistryURL() string {
	if a.opts.RegistryURL != "" {
		return a.opts.RegistryURL
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.emb == nil {
		return ""
	}
	return a.emb.registryURL()
}

// Run starts the application and processes until ctx is done or
// processing fails, then closes it. It returns nil after a clean stop.
func (a *App) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-a.done:
	}
	return a.Close()
}

// Start starts the embedded broker if no bootstrap servers were given,
// creates the internal topics, opens the local state, joins the consumer
// group and starts processing in the background. Stop it with Close.
func (a *App) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return ErrAppStarted
	}
	a.started = true
	ctx, stop := context.WithCancel(ctx)
	a.stopStart, a.starting = stop, make(chan struct{})
	a.mu.Unlock()
	// ctx bounds only the start-up: what runs after it has contexts of
	// its own.
	defer close(a.starting)
	defer stop()
	if err := a.start(ctx); err != nil {
		a.mu.Lock()
		msrv := a.metricsSrv
		a.metricsSrv = nil
		a.mu.Unlock()
		if msrv != nil {
			msrv.close()
		}
		a.setState(Error)
		return err
	}
	return nil
}

func (a *App) start(ctx context.Context) error {
	a.setState(Rebalancing)
	if a.opts.MetricsAddr != "" {
		srv, err := startMetricsServer(a.opts.MetricsAddr, a.metrics.prom)
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.metricsSrv = srv
		a.mu.Unlock()
		a.opts.Logger.Info("runnel: serving metrics", "url", "http://"+srv.addr()+"/metrics")
	}

	dir := filepath.Join(a.opts.StateDir, a.opts.ApplicationID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("stream: state dir: %w", err)
	}
	brokers := a.opts.Brokers
	var emb *embedded
	if len(brokers) == 0 {
		var err error
		// An external registry replaces the embedded broker's.
		noRegistry := a.opts.NoEmbeddedRegistry || a.opts.RegistryURL != ""
		if emb, err = startEmbedded(ctx, dir, noRegistry); err != nil {
			return err
		}
		brokers = []string{emb.addr()}
		a.opts.Logger.Info("runnel: embedded broker started", "bootstrap_server", emb.addr(), "data_dir", emb.dir)
	}
	process, err := instanceID(dir)
	if err != nil {
		return closeAfter(err, emb)
	}
	inst, err := newInstance(ctx, a, brokers, dir, process)
	if err != nil {
		return closeAfter(err, emb)
	}
	var workers []*runner
	for i := range a.opts.NumWorkers {
		a.workerSettling(i) // until its first assignment runs
		r, err := newRunner(inst, i)
		if err != nil {
			for _, w := range workers {
				w.close()
			}
			return closeAfter(errors.Join(err, inst.close()), emb)
		}
		workers = append(workers, r)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	a.mu.Lock()
	a.brokers, a.emb, a.inst, a.cancel, a.done = brokers, emb, inst, cancel, make(chan struct{})
	a.mu.Unlock()
	go a.runWorkers(runCtx, cancel, inst, workers)
	return nil
}

// runWorkers runs the workers until ctx is done or one fails, which stops
// the others; then it closes the instance.
func (a *App) runWorkers(ctx context.Context, stop context.CancelFunc, inst *instance, workers []*runner) {
	defer close(a.done)
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for _, r := range workers {
		wg.Go(func() {
			if err := a.runWorker(ctx, r, func() (*runner, error) { return newRunner(inst, r.worker) }); err != nil {
				errMu.Lock()
				if first == nil {
					first = err
				}
				errMu.Unlock()
				stop()
			}
		})
	}
	// The status publisher stops with the workers (ctx), before the
	// instance it reads is closed.
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		inst.publishStatus(ctx)
	}()
	wg.Wait()
	stop()
	<-statusDone
	err := errors.Join(first, inst.close())
	a.mu.Lock()
	a.err = err
	a.mu.Unlock()
	if err != nil {
		a.setState(Error)
	}
}

func closeAfter(err error, emb *embedded) error {
	if emb != nil {
		emb.close()
	}
	return err
}

// Done is closed when processing stops: after Close, or on an error (see
// Err).
func (a *App) Done() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.done
}

// Err returns why processing stopped, or nil.
func (a *App) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Close stops processing (committing what was processed), leaves the
// group, closes the local state and the embedded broker, and returns the
// error processing stopped with, if any.
func (a *App) Close() error {
	if reg := a.opts.MetricsRegisterer; reg != nil {
		defer a.metrics.prom.unregister(reg)
	}
	a.mu.Lock()
	stopStart, starting := a.stopStart, a.starting
	a.mu.Unlock()
	if starting != nil {
		// A Start under way gives up, undoing what it made, or finishes
		// and is then closed below.
		stopStart()
		<-starting
	}
	a.mu.Lock()
	cancel, done, emb, msrv := a.cancel, a.done, a.emb, a.metricsSrv
	a.cancel, a.emb, a.metricsSrv = nil, nil, nil
	a.mu.Unlock()
	if msrv != nil {
		defer msrv.close()
	}
	if cancel == nil {
		return a.Err()
	}
	a.setState(PendingShutdown)
	cancel()
	<-done
	err := a.Err()
	if emb != nil {
		err = errors.Join(err, emb.close())
	}
	a.setState(NotRunning)
	return err
}

// instanceID returns the id of the instance owning dir, created on first
// use. It names the instance's transactional producer, so that a restarted
// instance fences its predecessor.
func instanceID(dir string) (string, error) {
	path := filepath.Join(dir, "instance-id")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("stream: write instance id: %w", err)
	}
	return id, nil
}
