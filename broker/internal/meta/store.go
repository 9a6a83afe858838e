// Package meta keeps the cluster's metadata — brokers, topics, partitions,
// their replicas, leaders, leader epochs and configs, SCRAM credentials
// (scram.go) and client quotas (quotas.go) — as a replicated state machine
// on hashicorp/raft.
//
// Layout in Config.Dir:
//
//	raft.db      Raft log and stable store (BoltDB)
//	snapshots/   Raft snapshots of the state machine (JSON)
//
// Every change is a command (JSON) appended to the Raft log; the state
// machine applies committed commands in order on raft's FSM goroutine and
// publishes an immutable Cluster view after each one, which readers load
// without locking.
//
// One node without Config.Quorum is a quorum of one on an in-memory
// transport, as a single broker always was. With a quorum (3 or 5 voters,
// KRaft's controller.quorum.voters) the nodes talk Raft over TCP through
// their controller listeners (transport.go); the Raft leader is the
// controller. A node that does not lead forwards its proposals to the
// controller and waits until it has applied the result itself, so every
// Store method works on every node. The controller also keeps broker
// liveness (heartbeats, in memory), fences brokers that stop
// heartbeating, elects partition leaders and accepts ISR changes from
// partition leaders (controller.go). It learns the other members' copies
// of the Raft log from their AppendEntries answers, which DescribeQuorum
// reports (quorum.go), and a controller that stops hands its role to a
// live voter first (handover.go).
package meta

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Config configures a Store.
type Config struct {
	// Dir holds the Raft log, stable store and snapshots. Required.
	Dir string
	// NodeID is this broker's id, also its Raft server id.
	NodeID int32
	// Transport carries Raft traffic between nodes. Default: an in-memory
	// transport, enough for a quorum of one; with Quorum set, TCP through
	// the controller listener.
	Transport raft.Transport
	// Quorum lists the controller quorum's voters, this node among them
	// (controller.quorum.voters). Empty means a quorum of one.
	Quorum []Voter
	// Listen is the controller listener address (the controller listener
	// of KRaft's listeners). Required with Quorum; port 0 picks one.
	Listen string
	// SessionTimeout fences a broker that has not heartbeated for this
	// long (broker.session.timeout.ms). Default 9s. Only with Quorum: a
	// quorum of one is its own only broker.
	SessionTimeout time.Duration
	// AutoLeaderRebalance turns on the automatic preferred-leader
	// election (auto.leader.rebalance.enable; rebalance.go), checked
	// every LeaderImbalanceCheckInterval (default 5 minutes) on brokers
	// whose share of partitions led by others is above
	// LeaderImbalancePercentage (default 10). Only with Quorum.
	AutoLeaderRebalance          bool
	LeaderImbalanceCheckInterval time.Duration
	LeaderImbalancePercentage    int
	// Logger receives Raft's warnings. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Dial opens this node's connections to other controllers (Raft and
	// forwarded calls). Default: a TCP dial with a 5 s timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ServerTLS and ClientTLS, set together, make the controller
	// listener mutual TLS (transport_tls.go): ServerTLS accepts
	// connections, and should require and verify client certificates;
	// ClientTLS gives the configuration for dialling the named host. Only
	// with Quorum. Default: plain TCP.
	ServerTLS *tls.Config
	ClientTLS func(serverName string) *tls.Config

	// directoryID is Dir's directory id (directory.go), read by Open.
	directoryID [16]byte
}

// Store is the metadata store of one node.
type Store struct {
	cfg   Config
	raft  *raft.Raft
	bolt  *raftboltdb.BoltStore
	trans raft.Transport
	// mux is the controller listener; nil for a quorum of one.
	mux *muxListener
	// applied is the last Raft index the state machine applied here.
	applied atomic.Uint64
	// live is the controller's view of broker liveness (controller.go).
	live *liveness
	// progress is the followers' replication progress as this node saw
	// it while leading (quorum.go); nil for a quorum of one.
	progress *progressTracker
	// raftReady is closed once raft is set: forwarded calls may arrive on
	// the controller listener before.
	raftReady chan struct{}

	view atomic.Pointer[Cluster]

	watchMu  sync.Mutex // guards watchers
	watchers map[chan struct{}]struct{}

	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error
	wg        sync.WaitGroup // the controller loop
}

// Open opens (or creates and bootstraps) the store in cfg.Dir and returns
// once this node leads and has applied every committed entry, or ctx ends.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("meta: dir is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if (cfg.ServerTLS == nil) != (cfg.ClientTLS == nil) {
		return nil, errors.New("meta: ServerTLS and ClientTLS go together")
	}
	if cfg.ClientTLS != nil {
		cfg.Dial = tlsDial(cfg.Dial, cfg.ClientTLS)
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 9 * time.Second
	}
	if cfg.LeaderImbalanceCheckInterval <= 0 {
		cfg.LeaderImbalanceCheckInterval = 5 * time.Minute
	}
	if cfg.LeaderImbalancePercentage <= 0 {
		cfg.LeaderImbalancePercentage = 10
	}
	dirID, err := loadDirectoryID(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.directoryID = dirID
	if len(cfg.Quorum) > 0 {
		return openCluster(ctx, cfg)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	bolt, err := raftboltdb.NewBoltStore(filepath.Join(cfg.Dir, "raft.db"))
	if err != nil {
		return nil, fmt.Errorf("meta: open raft log: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, "snapshots"), 2, hclog.NewNullLogger())
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("meta: open snapshots: %w", err)
	}
	s := &Store{
		cfg:      cfg,
		bolt:     bolt,
		watchers: make(map[chan struct{}]struct{}),
		closed:   make(chan struct{}),
	}
	s.view.Store(newState().view(0, -1))

	id := raft.ServerID(strconv.Itoa(int(cfg.NodeID)))
	trans := cfg.Transport
	if trans == nil {
		_, trans = raft.NewInmemTransport(raft.ServerAddress("node-" + string(id)))
	}
	s.trans = trans

	rc := raft.DefaultConfig()
	rc.LocalID = id
	// Raft warns at every start of a quorum of one ("heartbeat timeout
	// reached, starting election"), which is how a single node elects
	// itself; only its errors are worth a broker log line.
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Error, Output: newSlogWriter(cfg.Logger), DisableTime: true})
	// A quorum of one elects itself after one heartbeat timeout; keep it
	// short so a broker starts in well under a second. Clusters over a
	// real network set their own transport and may want more.
	if cfg.Transport == nil {
		rc.HeartbeatTimeout = 50 * time.Millisecond
		rc.ElectionTimeout = 50 * time.Millisecond
		rc.LeaderLeaseTimeout = 50 * time.Millisecond
		rc.CommitTimeout = 5 * time.Millisecond
	}

	existing, err := raft.HasExistingState(bolt, bolt, snaps)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("meta: %w", err)
	}
	if !existing {
		conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: id, Address: trans.LocalAddr()}}}
		if err := raft.BootstrapCluster(rc, bolt, bolt, snaps, trans, conf); err != nil {
			bolt.Close()
			return nil, fmt.Errorf("meta: bootstrap: %w", err)
		}
	}
	f := &fsm{st: newState(), publish: s.publish}
	r, err := raft.NewRaft(rc, f, bolt, bolt, snaps, trans)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("meta: start raft: %w", err)
	}
	s.raft = r
	if err := s.waitReady(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if s.Cluster().ClusterID == "" {
		if err := s.propose(ctx, &command{Op: opInitCluster, ClusterID: newClusterID()}); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// waitReady waits for leadership and then for every committed entry to be
// applied (a barrier), so the first view a caller sees is complete.
func (s *Store) waitReady(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.raft.State() != raft.Leader {
		select {
		case <-ctx.Done():
			return fmt.Errorf("meta: waiting for leadership: %w", ctx.Err())
		case <-t.C:
		}
	}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	// The barrier's future does not see ctx: wait for either. A
	// cancelled caller closes the store, which ends the barrier and its
	// goroutine.
	f := s.raft.Barrier(timeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("meta: barrier: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("meta: barrier: %w", ctx.Err())
	}
}

// publish makes a new view current and wakes watchers. Called on the FSM
// goroutine.
func (s *Store) publish(st *state, index uint64) {
	if index > 0 {
		s.applied.Store(index)
	}
	s.view.Store(st.view(index, s.controllerID()))
	s.notify()
}

func (s *Store) notify() {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	for ch := range s.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *Store) controllerID() int32 {
	if s.raft == nil {
		return -1
	}
	_, id := s.raft.LeaderWithID()
	n, err := strconv.Atoi(string(id))
	if err != nil {
		return -1
	}
	return int32(n)
}

// Cluster returns the current metadata view. It never blocks and never
// returns nil; do not modify what it returns.
func (s *Store) Cluster() *Cluster {
	v := s.view.Load()
	if c := s.controllerID(); c != v.ControllerID {
		nv := *v
		nv.ControllerID = c
		s.view.CompareAndSwap(v, &nv)
		return &nv
	}
	return v
}

// Quotas returns the client quotas of the current view: Cluster().Quotas
// without finding the controller, for callers on every request's path.
func (s *Store) Quotas() Quotas { return s.view.Load().Quotas }

// Watch returns a channel that receives a value (coalesced) after every
// change, and a function that stops the watch.
func (s *Store) Watch() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.watchMu.Lock()
	s.watchers[ch] = struct{}{}
	s.watchMu.Unlock()
	return ch, func() {
		s.watchMu.Lock()
		delete(s.watchers, ch)
		s.watchMu.Unlock()
	}
}

// propose replicates one command and waits until it is applied here. On
// a node that does not lead, the command goes to the controller, and is
// retried there while leadership moves, until ctx ends.
func (s *Store) propose(ctx context.Context, c *command) error {
	select {
	case <-s.closed:
		return ErrClosed
	default:
	}
	if s.mux == nil {
		_, err := s.applyLocal(ctx, c)
		return err
	}
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("meta: encode: %w", err)
	}
	for {
		var idx uint64
		if s.raft.State() == raft.Leader {
			idx, err = s.applyLocal(ctx, c)
		} else {
			var resp forwardResponse
			resp, err = s.forward(ctx, forwardRequest{Kind: "apply", Command: data})
			if err == nil {
				idx, err = resp.Index, decodeError(resp)
			}
		}
		if !errors.Is(err, ErrNotController) {
			if idx > 0 {
				s.waitApplied(ctx, idx)
			}
			return err
		}
		if err := s.pause(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("meta: %s: no controller: %w", c.Op, err)
		}
	}
}

// pause waits d, or returns early with ctx's error or ErrClosed.
func (s *Store) pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return ErrClosed
	case <-t.C:
		return nil
	}
}

// waitApplied waits until this node has applied the entry at idx (so
// the caller reads its own write), for at most a few seconds.
func (s *Store) waitApplied(ctx context.Context, idx uint64) {
	ch, stop := s.Watch()
	defer stop()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	for s.applied.Load() < idx {
		select {
		case <-ch:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		case <-s.closed:
			return
		}
	}
}

// applyLocal replicates a command through this node's Raft, which must
// lead, and returns its log index and the state machine's answer.
func (s *Store) applyLocal(ctx context.Context, c *command) (uint64, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return 0, fmt.Errorf("meta: encode: %w", err)
	}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	fut := s.raft.Apply(data, timeout)
	if err := fut.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrEnqueueTimeout),
			// A controller handing over (handover.go) refuses new
			// entries until the new one leads: retried there.
			errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return 0, fmt.Errorf("%w: %v", ErrNotController, err)
		case errors.Is(err, raft.ErrRaftShutdown):
			return 0, ErrClosed
		}
		return 0, fmt.Errorf("meta: replicate %s: %w", c.Op, err)
	}
	if res, ok := fut.Response().(applyResult); ok {
		return fut.Index(), res.err
	}
	return fut.Index(), nil
}

// RegisterBroker records (or updates) a broker's address.
func (s *Store) RegisterBroker(ctx context.Context, b Broker) error {
	if b.ID == s.cfg.NodeID {
		b.DirectoryID = s.cfg.directoryID
	}
	if old, ok := s.Cluster().Brokers[b.ID]; ok && old == b {
		return nil
	}
	return s.propose(ctx, &command{Op: opRegisterBroker, Broker: &b})
}

// CreateTopic creates a topic and returns it as applied.
func (s *Store) CreateTopic(ctx context.Context, spec TopicSpec) (*Topic, error) {
	if err := ValidateTopicName(spec.Name); err != nil {
		return nil, err
	}
	cl := s.Cluster()
	if cl.Topics[spec.Name] != nil {
		return nil, fmt.Errorf("%w: %s", ErrTopicExists, spec.Name)
	}
	parts, err := placeTopic(cl, spec)
	if err != nil {
		return nil, err
	}
	t := &Topic{Name: spec.Name, Internal: spec.Internal, Partitions: parts, Configs: maps.Clone(spec.Configs)}
	if _, err := rand.Read(t.ID[:]); err != nil {
		return nil, err
	}
	if err := s.propose(ctx, &command{Op: opCreateTopic, Topic: t}); err != nil {
		return nil, err
	}
	return s.Cluster().Topics[spec.Name], nil
}

// DeleteTopic removes a topic.
func (s *Store) DeleteTopic(ctx context.Context, name string) error {
	return s.propose(ctx, &command{Op: opDeleteTopic, Name: name})
}

// CreatePartitions grows a topic to count partitions. Fewer or equal is
// ErrInvalidPartitions: partitions never shrink.
func (s *Store) CreatePartitions(ctx context.Context, name string, count int32) error {
	_, parts, err := s.placeNewPartitions(name, count)
	if err != nil {
		return err
	}
	return s.propose(ctx, &command{Op: opCreatePartitions, Name: name, Count: count, Partitions: parts})
}

// placeNewPartitions places the partitions that grow topic name to count,
// at the topic's replication factor, and returns the topic as it is now.
// Fewer or equal is ErrInvalidPartitions: partitions never shrink.
func (s *Store) placeNewPartitions(name string, count int32) (*Topic, []Partition, error) {
	cl := s.Cluster()
	t := cl.Topics[name]
	if t == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	have := int32(len(t.Partitions))
	if count <= have {
		return nil, nil, fmt.Errorf("%w: topic %s has %d partitions; partitions can only grow", ErrInvalidPartitions, name, have)
	}
	rf := int16(1)
	if have > 0 {
		rf = int16(len(t.Partitions[0].Replicas))
	}
	parts, err := placeReplicas(cl.Brokers, have, count-have, rf)
	if err != nil {
		return nil, nil, err
	}
	return t, parts, nil
}

// SetTopicConfigs replaces a topic's config overrides.
func (s *Store) SetTopicConfigs(ctx context.Context, name string, configs map[string]string) error {
	if configs == nil {
		configs = map[string]string{}
	}
	return s.propose(ctx, &command{Op: opSetTopicConfigs, Name: name, Configs: configs})
}

// UpdateTopicConfigs replaces a topic's config overrides with what edit
// makes of the current ones, atomically: if another change lands between
// the read and the write, edit runs again on the newer configs. edit gets
// a copy it may modify; an error from it is returned as is and nothing is
// written.
func (s *Store) UpdateTopicConfigs(ctx context.Context, name string, edit func(cur map[string]string) (map[string]string, error)) error {
	return s.updateConfigs(ctx, opSetTopicConfigs, name, func() (map[string]string, error) {
		t := s.Cluster().Topics[name]
		if t == nil {
			return nil, fmt.Errorf("%w: %s", ErrUnknownTopic, name)
		}
		return t.Configs, nil
	}, edit)
}

// UpdateBrokerConfigs is UpdateTopicConfigs for the dynamic configs of a
// broker resource: "" for the cluster-wide defaults, a broker id for that
// broker's own (see Cluster.BrokerConfigs). The store does not know which
// names are valid; the caller's edit checks them.
func (s *Store) UpdateBrokerConfigs(ctx context.Context, resource string, edit func(cur map[string]string) (map[string]string, error)) error {
	return s.updateConfigs(ctx, opSetBrokerConfigs, resource, func() (map[string]string, error) {
		return s.Cluster().BrokerConfigs[resource], nil
	}, edit)
}

func (s *Store) updateConfigs(ctx context.Context, op, name string, read func() (map[string]string, error), edit func(map[string]string) (map[string]string, error)) error {
	for {
		cur, err := read()
		if err != nil {
			return err
		}
		cp := maps.Clone(cur)
		if cp == nil {
			cp = make(map[string]string)
		}
		next, err := edit(cp)
		if err != nil {
			return err
		}
		if next == nil {
			next = map[string]string{}
		}
		err = s.propose(ctx, &command{Op: op, Name: name, Configs: next, IfConfigs: cur, Conditional: true})
		if !errors.Is(err, errConfigConflict) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// AllocateProducerIDs reserves n producer ids for this broker and returns
// the first. The high-water mark lives in the replicated state, so ids are
// unique across restarts and brokers; ids of a block a broker did not use
// before it stopped are never handed out again.
func (s *Store) AllocateProducerIDs(ctx context.Context, n int64) (int64, error) {
	if n < 1 {
		return 0, fmt.Errorf("meta: cannot allocate %d producer ids", n)
	}
	for {
		first := s.Cluster().NextProducerID
		err := s.propose(ctx, &command{Op: opAllocateIDs, First: first, IDs: n})
		if err == nil {
			return first, nil
		}
		if !errors.Is(err, errIDConflict) {
			return 0, err
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
}

// Close stops Raft and closes the log store. Safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.wg.Wait()
		var errs []error
		if s.raft != nil {
			errs = append(errs, s.raft.Shutdown().Error())
		}
		// Close the pooled connections to the other voters too: raft's
		// transport leaves them open, and the peers' handlers would
		// read them until those peers stop (a process running several
		// nodes, as tests do, would keep them).
		if c, ok := s.trans.(interface{ CloseStreams() }); ok && s.cfg.Transport == nil {
			c.CloseStreams()
		}
		if c, ok := s.trans.(io.Closer); ok && s.cfg.Transport == nil {
			errs = append(errs, c.Close())
		}
		if s.mux != nil {
			s.mux.Close()
			s.mux.wait()
		}
		errs = append(errs, s.bolt.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// newClusterID makes a Kafka-style cluster id: 16 random bytes in
// URL-safe base64 without padding (22 characters).
func newClusterID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// slogWriter turns hclog's text lines into slog errors, each kind of line
// (its text before the first key=value) at most once every raftLogEvery,
// with the count of those left out: while a voter is down, Raft logs a
// failed heartbeat every few milliseconds, which would bury every other
// line of the broker's log.
type slogWriter struct {
	l   *slog.Logger
	now func() time.Time

	mu    sync.Mutex // guards kinds
	kinds map[string]*raftLogKind
}

// raftLogKind is when a kind of line was last logged and how many of it
// were left out since.
type raftLogKind struct {
	at         time.Time
	suppressed int
}

// raftLogEvery is how often a kind of Raft line is logged at most.
const raftLogEvery = 10 * time.Second

func newSlogWriter(l *slog.Logger) *slogWriter {
	return &slogWriter{l: l, now: time.Now, kinds: map[string]*raftLogKind{}}
}

func (w *slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	kind := line
	if i := strings.IndexByte(kind, '='); i >= 0 {
		kind = kind[:i]
		if j := strings.LastIndexByte(kind, ' '); j >= 0 {
			kind = kind[:j]
		}
	}
	now := w.now()
	w.mu.Lock()
	k, ok := w.kinds[kind]
	if ok && now.Sub(k.at) < raftLogEvery {
		k.suppressed++
		w.mu.Unlock()
		return len(p), nil
	}
	if !ok {
		if len(w.kinds) >= 1024 { // bound the memory whatever Raft writes
			clear(w.kinds)
		}
		k = &raftLogKind{}
		w.kinds[kind] = k
	}
	suppressed := k.suppressed
	k.suppressed, k.at = 0, now
	w.mu.Unlock()
	if suppressed > 0 {
		w.l.Error(line, "component", "raft", "similar_lines_left_out", suppressed)
	} else {
		w.l.Error(line, "component", "raft")
	}
	return len(p), nil
}
