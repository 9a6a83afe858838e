// Package broker is Runnel's log broker: it speaks the Kafka wire protocol,
// keeps partition logs on disk (package broker/internal/log) and cluster metadata in a
// Raft state machine (package broker/internal/meta).
//
// Concurrency. Each client connection has a reader goroutine, which decodes
// requests and runs their synchronous part in arrival order (a Produce
// appends to the log there), and a writer goroutine, which finishes each
// request in the same order (waits for the fsync that covers a Produce, or
// for data that a long-polling Fetch wants) and writes the response. So a
// client that pipelines requests gets group commit across them, and
// responses leave in request order as the protocol demands.
//
// A partition's appends are serialised by its append lock; its high
// watermark moves under its own mutex, and waiters (produce acks, fetch long
// polls) are woken when it moves. The set of local partitions is reconciled
// with the metadata store after every metadata change.
//
// Limits. What one client can make the broker hold is bounded by limits
// named after the Kafka properties they mirror (see limits.go): a
// broker-wide byte budget for requests read but not answered
// (queued.max.request.bytes), taken by a reader before it buffers a frame
// and given back by the writer once the response is out; a pipeline depth
// per connection (queued.max.requests); deadlines for idle connections,
// for a frame in progress and for writes a client does not read; a
// broker-wide budget for Fetch responses read but not yet written
// (queued.max.response.bytes); and partition replicas per broker
// (max.broker.partitions, checked by the metadata state machine). A
// connection whose client goes away cancels its requests' waits.
// Config.MemoryLimit sets the Go runtime's memory limit to match.
//
// Replication. Without a controller quorum the broker is a cluster of one
// and leads every partition. In a cluster (Config.ControllerQuorum) the
// metadata store is a Raft group whose leader is the controller: it fences
// brokers that stop heartbeating and elects partition leaders from the
// ISR. Each partition this broker holds leads or follows as metadata says:
// a leader keeps its followers' progress, the ISR and the high watermark
// (replica_state.go, where the state machine and its invariants are
// described; partition_replication.go), and asks the controller for ISR
// changes (isrLoop); a follower copies the leader's log through a fetcher
// per leader (replica_fetcher.go), after truncating to the leader's epoch
// boundary. The group and transaction coordinators serve the
// __consumer_offsets and __transaction_state partitions this broker leads,
// loading and unloading them as leadership moves
// (coordinator_placement.go); a transaction coordinator writes markers on
// other brokers' partitions, and partitions verify transactional writes
// with a coordinator on another broker, over the Kafka protocol
// (txn_markers.go).
package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/runnel-dev/runnel/broker/internal/group"
	"github.com/runnel-dev/runnel/broker/internal/log"
	"github.com/runnel-dev/runnel/broker/internal/meta"
	"github.com/runnel-dev/runnel/broker/internal/txn"
)

// Broker is a running broker. Create it with Start; stop it with Close.
type Broker struct {
	cfg Config
	// tailCache keeps the partitions' last direct appends for their
	// readers (Config.TailCacheBytes); nil for none.
	tailCache *log.TailCache
	// directReads reads what the partitions written directly hold in
	// neither cache with O_DIRECT; nil with DisableDirectWrites.
	directReads *log.DirectReads
	// connSeq numbers connections (conn.id).
	connSeq atomic.Uint64
	logger  *slog.Logger
	meta    *meta.Store

	ln         net.Listener // the first of listeners, registered in the metadata
	advertised string       // host:port clients are told
	// listeners are the Kafka listeners (listeners.go); tls and
	// saslUsers serve their security, nil when no listener needs them.
	listeners []*listener
	tls       *tlsFiles
	saslUsers *saslUsers
	// quotas measure the client quotas' rates (quota.go); connLimits
	// count connections (connlimits.go).
	quotas     *quotaSensors
	connLimits *connLimits
	connRates  *connRates
	host       string
	port       int32
	// incarnation tells this process's registration from the ones of
	// the broker's earlier runs (meta.Broker.Incarnation).
	incarnation [16]byte

	// authz checks every request against the ACLs (authorizer.go); nil
	// when no authorizer is configured.
	authz *authorizer

	metricsLn  net.Listener
	metricsSrv *http.Server
	metrics    *metrics

	// registry serves the schema registry (registry.go); nil when off.
	registry *schemaRegistry
	// console serves the web console (console.go); nil when off.
	console *webConsole

	parts *partitions
	// fetchers replicate the partitions this broker follows
	// (replica_fetcher.go).
	fetchers *fetchers
	// throttles are the replication throttles' rates
	// (replication_throttle.go).
	throttles *replicationThrottles
	// placement loads and unloads the coordinators' shards as this
	// broker gains and loses their partitions' leadership
	// (coordinator_placement.go).
	placement *coordPlacement
	// peers carry the coordinators' requests to other brokers
	// (txn_markers.go).
	peers  *peerClients
	groups *group.Coordinator
	txns   *txn.Coordinator

	// markers batches the transaction markers for other brokers
	// (txn_marker_batch.go).
	markers *markerBatcher
	// cleaner compacts logs (cleaner.go); nil until startCleaner.
	cleaner atomic.Pointer[log.Cleaner]

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the broker owns

	// requestBytes is queued.max.request.bytes: the memory requests read
	// but not yet answered may hold, across connections (conn.go).
	requestBytes *byteBudget
	// fetchBytes is queued.max.response.bytes: the memory Fetch
	// responses may hold from the log read to the write (fetch_budget.go).
	fetchBytes *fetchBudget

	connsMu sync.Mutex // guards conns
	conns   map[*conn]struct{}

	// restoreMemoryLimit gives the Go runtime back the memory limit
	// Config.MemoryLimit replaced (memlimit.go).
	restoreMemoryLimit func()

	// lock holds the data dir's lock file (datadir_lock.go) from Start
	// to the end of Close.
	lock *os.File

	closeOnce sync.Once
	closeErr  error
}

// Start opens the data directory, recovers partition logs and metadata,
// starts listening, and returns once clients can connect. The context bounds
// start-up only; stop the broker with Close.
func Start(ctx context.Context, cfg Config) (_ *Broker, err error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("broker: data dir: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			lock.Close()
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("broker: start: %w", err)
	}
	b := &Broker{
		cfg:    cfg,
		logger: cfg.Logger,
		conns:  make(map[*conn]struct{}),
		lock:   lock,

		requestBytes: newByteBudget(cfg.QueuedMaxRequestBytes),
		quotas:       newQuotaSensors(&cfg),
		connLimits:   newConnLimits(&cfg.ClientLimits),
		connRates:    newConnRates(&cfg),
		fetchBytes:   newFetchBudget(cfg.QueuedMaxResponseBytes, int64(cfg.MaxMessageBytes)),
	}
	if _, err := rand.Read(b.incarnation[:]); err != nil {
		return nil, fmt.Errorf("broker: incarnation: %w", err)
	}
	if !cfg.DisableDirectWrites {
		b.directReads = log.NewDirectReads()
	}
	if !cfg.DisableDirectWrites && cfg.TailCacheBytes > 0 { // set by EnsureDefaults
		b.tailCache = log.NewTailCache(cfg.TailCacheBytes)
		if cfg.TailCachePrefault {
			b.tailCache.Prefault()
		}
	}
	// undo holds what start-up opened so far; a step that fails closes
	// it again, last opened first.
	var undo []func()
	defer func() {
		if err != nil {
			for _, f := range slices.Backward(undo) {
				f()
			}
		}
	}()
	b.restoreMemoryLimit = setMemoryLimit(cfg.MemoryLimit)
	undo = append(undo, b.restoreMemoryLimit)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	undo = append(undo, b.cancel)

	if err := b.openListeners(); err != nil {
		return nil, err
	}
	undo = append(undo, b.closeListeners)
	if err := b.startSecurity(); err != nil {
		return nil, err
	}

	b.metrics = newMetrics()
	mcfg := meta.Config{
		Dir:            filepath.Join(cfg.DataDir, "meta"),
		NodeID:         cfg.NodeID,
		Logger:         cfg.Logger,
		Now:            cfg.Now,
		Dial:           cfg.Dial,
		Listen:         cfg.ControllerListen,
		SessionTimeout: cfg.BrokerSessionTimeout,

		AutoLeaderRebalance:          !cfg.DisableAutoLeaderRebalance,
		LeaderImbalanceCheckInterval: cfg.LeaderImbalanceCheckInterval,
		LeaderImbalancePercentage:    cfg.LeaderImbalancePerBrokerPercentage,
	}
	mcfg.ServerTLS, mcfg.ClientTLS = b.controllerTLS()
	if cfg.ControllerQuorum != "" {
		mcfg.Quorum, _ = meta.ParseQuorum(cfg.ControllerQuorum) // checked by Validate
	}
	ms, err := meta.Open(ctx, mcfg)
	if err != nil {
		return nil, fmt.Errorf("broker: metadata: %w", err)
	}
	b.meta = ms
	b.throttles = newReplicationThrottles(&cfg, ms.Cluster)
	if cfg.Security.Authorizer.Enabled {
		b.authz = newAuthorizer(cfg.Security.Authorizer, func() *meta.ACLSet { return ms.Cluster().ACLs }, b.logger)
	}
	undo = append(undo, func() { ms.Close() })
	// From here on, what runs under b.wg stops with b.ctx: a failed start
	// cancels it and waits for them before closing what they use.
	undo = append(undo, func() { b.cancel(); b.wg.Wait() })
	if err := b.checkInterBrokerAuth(ctx); err != nil {
		return nil, err
	}
	if err := b.register(ctx); err != nil {
		return nil, fmt.Errorf("broker: register: %w", err)
	}
	if ms.Clustered() {
		// Heartbeat from now on: starting up may wait for the other
		// brokers (internal topics), and must not get this one fenced.
		b.wg.Add(1)
		go func() { defer b.wg.Done(); b.heartbeatLoop() }()
	}

	b.fetchers = newFetchers(b)
	b.placement = newCoordPlacement(b)
	b.peers = newPeerClients(b)
	undo = append(undo, b.peers.close)
	b.markers = newMarkerBatcher(b.sendTxnMarkers)
	undo = append(undo, b.markers.close)
	b.parts = newPartitions(b)
	undo = append(undo, func() { b.parts.closeAll() })
	undo = append(undo, func() { b.cancel(); b.wg.Wait(); b.fetchers.close() })
	// The ISR loop and the fetchers run before the coordinators load:
	// with replicas, their partitions' high watermarks move only by
	// replication.
	b.wg.Add(2)
	go func() { defer b.wg.Done(); b.isrLoop() }()
	go func() { defer b.wg.Done(); b.hwCheckpointLoop() }()
	// Opening the logs does not see ctx (recovery of one log runs to its
	// end); a signal that came meanwhile stops the start after it.
	err = b.openLogs()
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("broker: start: %w", ctx.Err())
	}
	if err != nil {
		return nil, err
	}
	// Reconcile on every metadata change from now on, so partitions
	// created by other brokers (internal topics) open here while this
	// one waits for them.
	watch, unwatch := ms.Watch()
	b.wg.Add(1)
	go func() { defer b.wg.Done(); defer unwatch(); b.reconcileLoop(watch) }()
	if err := b.startGroups(ctx); err != nil {
		return nil, err
	}
	undo = append(undo, b.groups.Close)
	if err := b.startTxns(ctx); err != nil {
		return nil, err
	}
	undo = append(undo, b.txns.Close)
	if cfg.MetricsListen != "" {
		if err := b.startMetrics(); err != nil {
			return nil, err
		}
	}

	b.startCleaner()
	b.wg.Add(2)
	go func() { defer b.wg.Done(); b.retentionLoop() }()
	go func() { defer b.wg.Done(); b.acceptLoop(b.listeners[0]) }()
	for _, l := range b.listeners[1:] {
		b.wg.Add(1)
		go func() { defer b.wg.Done(); b.acceptLoop(l) }()
	}
	if err := b.startRegistry(ctx); err != nil {
		return nil, err
	}
	undo = append(undo, b.registry.close)
	if err := b.startConsole(); err != nil {
		return nil, err
	}
	metricsAddr := "off"
	if m := b.MetricsAddr(); m != "" {
		metricsAddr = "http://" + m + "/metrics"
	}
	b.logger.Info("broker started", "version", Version(), "node", cfg.NodeID, "listener", b.ln.Addr().String(),
		"advertised", b.advertised, "data_dir", cfg.DataDir, "metrics", metricsAddr,
		"partitions", b.parts.opened.Load())
	started = true
	return b, nil
}

func (b *Broker) startMetrics() error {
	ln, err := net.Listen("tcp", b.cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("broker: metrics listen: %w", err)
	}
	reg := prometheus.NewRegistry()
	// The Go runtime's and the process's own series, as every Go
	// service exports them (go_*, process_*).
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(b.metrics.collectors()...)
	reg.MustRegister(&partitionCollector{b: b})
	reg.MustRegister(&groupCollector{b: b})
	reg.MustRegister(&cleanerCollector{b: b})
	reg.MustRegister(&replicationCollector{b: b})
	reg.MustRegister(&throttleCollector{t: b.throttles})
	if b.authz != nil {
		reg.MustRegister(b.authz.denials)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	b.metricsLn = ln
	b.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := b.metricsSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.logger.Error("metrics server", "err", err)
		}
	}()
	return nil
}

// Addr returns the host:port Kafka clients connect to: the inter-broker
// listener's advertised address, by default the first listener's
// (ListenerAddr gives the others').
func (b *Broker) Addr() string { return b.advertised }

// MetricsAddr returns the host:port serving /metrics, or "" when metrics
// are off.
func (b *Broker) MetricsAddr() string {
	if b.metricsLn == nil {
		return ""
	}
	return b.metricsLn.Addr().String()
}

// Close stops accepting connections, closes every client connection, waits
// for in-flight requests, and closes the logs and the metadata store
// cleanly. In a cluster it first moves this broker's leaderships away
// (controlled_shutdown.go). It is safe to call more than once.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.controlledShutdown()
		b.handOverController() // controller_handover.go
		// The registry and the console are clients of this broker:
		// they go first.
		b.registry.close()
		b.console.close()
		b.cancel()
		b.closeListeners()
		if b.metricsSrv != nil {
			b.metricsSrv.Close()
		}
		b.connsMu.Lock()
		for c := range b.conns {
			c.close()
		}
		b.connsMu.Unlock()
		b.wg.Wait()
		b.fetchers.close()
		b.stopCleaner()
		// Markers go through the group coordinator: close it after.
		b.txns.Close()
		b.markers.close()
		b.groups.Close()
		b.peers.close()
		errs := []error{b.parts.closeAll(), b.meta.Close()}
		if b.tailCache != nil {
			b.tailCache.Close() // every log using it is closed
		}
		// Last: the data dir is free once nothing here touches it.
		errs = append(errs, b.lock.Close())
		b.restoreMemoryLimit()
		b.closeErr = errors.Join(errs...)
		b.logger.Info("broker stopped", "addr", b.advertised)
	})
	return b.closeErr
}

func (b *Broker) acceptLoop(l *listener) {
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if b.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			b.logger.Error("accept", "err", err)
			return
		}
		// Connection limits (connlimits.go): over its address's
		// limit it is closed at once; at max.connections it is
		// served, and nothing more accepted, once there is room, the
		// client waiting as in the listen backlog. Room is taken only
		// for a connection accepted, so the loops of several
		// listeners hold none in advance.
		ip, ok := b.connLimits.admit(nc.RemoteAddr())
		if !ok {
			b.logger.Info("connection refused: max.connections.per.ip", "remote", nc.RemoteAddr().String(), "listener", l.spec.name)
			nc.Close()
			continue
		}
		if err := b.connLimits.acquire(b.ctx); err != nil {
			b.connLimits.release(ip)
			nc.Close()
			return
		}
		if !b.acceptRate(l, nc, ip) {
			continue
		}
		c := newConn(b, nc)
		c.setListener(l)
		b.connsMu.Lock()
		if b.ctx.Err() != nil {
			b.connsMu.Unlock()
			nc.Close()
			b.connLimits.release(ip)
			b.connLimits.releaseSlot()
			return
		}
		b.conns[c] = struct{}{}
		b.connsMu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			c.serve()
			b.connsMu.Lock()
			delete(b.conns, c)
			b.connsMu.Unlock()
			b.connLimits.release(ip)
			b.connLimits.releaseSlot()
		}()
	}
}

// acceptRate applies the connection creation rates (connrate.go) to a
// connection accepted on l from ip and counted in the connection limits:
// it waits out max.connection.creation.rate, and reports false when ip is
// past its connection_creation_rate or the broker is closing, the
// connection then closed (later, for the rate) and uncounted.
func (b *Broker) acceptRate(l *listener, nc net.Conn, ip string) bool {
	refuse := func() {
		nc.Close()
		b.connLimits.release(ip)
		b.connLimits.releaseSlot()
	}
	if len(b.listeners) > 1 && l == b.interBroker() {
		return true
	}
	if d := b.connRates.reserve(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-b.ctx.Done():
			t.Stop()
			refuse()
			return false
		}
	}
	d := b.connRates.admitIP(b.meta.Quotas(), ip)
	if d == 0 {
		return true
	}
	b.logger.Info("connection refused: connection_creation_rate", "remote", nc.RemoteAddr().String(), "listener", l.spec.name, "closed in", d)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-b.ctx.Done():
		}
		refuse()
	}()
	return false
}

// reconcileLoop brings local partitions in line with metadata after every
// applied change.
func (b *Broker) reconcileLoop(watch <-chan struct{}) {
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-watch:
			if err := b.parts.reconcile(); err != nil {
				b.logger.Error("reconcile partitions", "err", err)
			}
		}
	}
}

// retentionLoop deletes expired segments every RetentionCheckInterval.
func (b *Broker) retentionLoop() {
	t := time.NewTicker(b.cfg.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
			b.parts.enforceRetention(b.cfg.Now())
		}
	}
}

// register records this broker (id, inter-broker listener, every
// listener, rack, its max.broker.partitions, this process's incarnation)
// in the metadata; in a cluster that also unfences it.
func (b *Broker) register(ctx context.Context) error {
	return b.meta.RegisterBroker(ctx, meta.Broker{ID: b.cfg.NodeID, Host: b.host, Port: b.port, Listeners: b.registeredListeners(), Rack: b.cfg.Rack, MaxPartitions: b.cfg.MaxBrokerPartitions, Incarnation: b.incarnation})
}

// internalTopic reports whether a topic belongs to a coordinator
// (__consumer_offsets, __transaction_state): clients may read it
// but neither write nor delete it.
func (b *Broker) internalTopic(name string) bool {
	t := b.meta.Cluster().Topics[name]
	return t != nil && t.Internal
}
