package meta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// openCluster opens the store of one node of a cluster: Raft over TCP on
// cfg.Listen. A voter of the controller quorum bootstraps (on first
// start, the same way on every voter) with cfg.Quorum; a node outside it
// (a broker-only node, KRaft's process.roles=broker) joins as a Raft
// non-voter, which receives and applies the log without voting: it asks
// the controller to add it. It returns once a controller is elected and
// this node has applied the cluster id, so a majority of the voters must
// be up.
func openCluster(ctx context.Context, cfg Config) (*Store, error) {
	self := -1
	for i, v := range cfg.Quorum {
		if v.ID == cfg.NodeID {
			self = i
		}
	}
	if cfg.Listen == "" {
		if self < 0 {
			return nil, fmt.Errorf("meta: node %d is not in the controller quorum, so it needs a controller listener of its own", cfg.NodeID)
		}
		cfg.Listen = cfg.Quorum[self].Addr
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("meta: controller listen: %w", err)
	}
	bolt, err := raftboltdb.NewBoltStore(filepath.Join(cfg.Dir, "raft.db"))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("meta: open raft log: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, "snapshots"), 2, hclog.NewNullLogger())
	if err != nil {
		ln.Close()
		bolt.Close()
		return nil, fmt.Errorf("meta: open snapshots: %w", err)
	}
	s := &Store{
		cfg:       cfg,
		bolt:      bolt,
		watchers:  make(map[chan struct{}]struct{}),
		closed:    make(chan struct{}),
		live:      newLiveness(cfg.SessionTimeout),
		progress:  newProgressTracker(cfg.Now),
		raftReady: make(chan struct{}),
	}
	s.view.Store(newState().view(0, -1))
	s.mux = newMuxListener(ln, s.serveForward, s.cfg.Dial, cfg.ServerTLS, func(from net.Addr, err error) {
		cfg.Logger.Warn("controller listener: refused a connection that failed the TLS handshake", "from", from.String(), "err", err)
	})
	s.trans = newNetworkTransport(s.mux, s.progress, func() uint64 {
		select {
		case <-s.raftReady:
			return s.raft.LastIndex()
		default:
			return 0
		}
	})
	fail := func(err error) (*Store, error) {
		s.trans.(io.Closer).Close()
		s.mux.Close()
		s.mux.wait()
		bolt.Close()
		return nil, err
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(strconv.Itoa(int(cfg.NodeID)))
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Error, Output: newSlogWriter(cfg.Logger), DisableTime: true})
	// Fail over in about a second: the controller's loss delays fencing
	// and leader elections by this much.
	rc.HeartbeatTimeout = raftHeartbeatTimeout
	rc.ElectionTimeout = 1000 * time.Millisecond
	rc.LeaderLeaseTimeout = 500 * time.Millisecond
	rc.CommitTimeout = 10 * time.Millisecond

	existing, err := raft.HasExistingState(bolt, bolt, snaps)
	if err != nil {
		return fail(fmt.Errorf("meta: %w", err))
	}
	if !existing && self >= 0 {
		var conf raft.Configuration
		for _, v := range cfg.Quorum {
			conf.Servers = append(conf.Servers, raft.Server{
				Suffrage: raft.Voter,
				ID:       raft.ServerID(strconv.Itoa(int(v.ID))),
				Address:  raft.ServerAddress(v.Addr),
			})
		}
		if err := raft.BootstrapCluster(rc, bolt, bolt, snaps, s.trans, conf); err != nil {
			return fail(fmt.Errorf("meta: bootstrap: %w", err))
		}
	}
	f := &fsm{st: newState(), publish: s.publish}
	r, err := raft.NewRaft(rc, f, bolt, bolt, snaps, s.trans)
	if err != nil {
		return fail(fmt.Errorf("meta: start raft: %w", err))
	}
	s.raft = r
	close(s.raftReady)
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.controllerLoop() }()
	if cfg.AutoLeaderRebalance {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.rebalanceLoop() }()
	}
	if self < 0 {
		if err := s.join(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.waitCluster(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.catchUp(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// catchUp waits until this node has applied everything the controller
// had committed when asked, so the first view its caller acts on is
// current: a broker that reconciled its partitions against a view still
// replaying its log would take a topic it does not know yet for one
// deleted while it was down, and remove its data.
func (s *Store) catchUp(ctx context.Context) error {
	for {
		var idx uint64
		var err error
		if s.raft.State() == raft.Leader {
			idx, err = s.committedIndex()
		} else {
			var resp forwardResponse
			resp, err = s.forward(ctx, forwardRequest{Kind: "index"})
			if err == nil {
				idx, err = resp.Index, decodeError(resp)
			}
		}
		if err == nil {
			// raft.AppliedIndex runs ahead of the state machine (it
			// counts entries handed to it), so wait for what the state
			// machine published.
			for s.applied.Load() < idx {
				if err := s.pause(ctx, 10*time.Millisecond); err != nil {
					return fmt.Errorf("meta: catching up with the controller: %w", err)
				}
			}
			return nil
		}
		if !errors.Is(err, ErrNotController) {
			return fmt.Errorf("meta: catching up with the controller: %w", err)
		}
		if err := s.pause(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("meta: catching up with the controller: %w", err)
		}
	}
}

// committedIndex is the controller's side of catchUp: a barrier (every
// committed entry applied here), then the last applied index.
func (s *Store) committedIndex() (uint64, error) {
	if s.raft.State() != raft.Leader {
		return 0, fmt.Errorf("%w: index", ErrNotController)
	}
	if err := s.raft.Barrier(10 * time.Second).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return 0, fmt.Errorf("%w: %v", ErrNotController, err)
		}
		return 0, err
	}
	// The barrier went through the state machine: everything before it
	// is applied and published.
	return s.applied.Load(), nil
}

// waitCluster waits until the cluster has an id here: the controller
// chose it (controllerLoop) and this node applied it.
func (s *Store) waitCluster(ctx context.Context) error {
	ch, stop := s.Watch()
	defer stop()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for s.Cluster().ClusterID == "" {
		select {
		case <-ctx.Done():
			return fmt.Errorf("meta: waiting for the controller quorum: %w", ctx.Err())
		case <-ch:
		case <-t.C:
		}
	}
	return nil
}

// ControllerAddr is the address of this node's controller listener, or
// "" for a quorum of one.
func (s *Store) ControllerAddr() string {
	if s.mux == nil {
		return ""
	}
	return s.mux.Addr().String()
}

// Clustered reports whether the store runs a controller quorum (as
// opposed to a quorum of one).
func (s *Store) Clustered() bool { return s.mux != nil }

// errNoLeader is returned by controller-only operations while no
// controller is elected.
var errNoLeader = errors.New("meta: no controller elected")

// join asks the controller to add this node to the Raft configuration as
// a non-voter, trying each voter until the one that leads accepts. A
// node already in the configuration is accepted again (idempotent).
func (s *Store) join(ctx context.Context) error {
	req := forwardRequest{Kind: "join", Broker: s.cfg.NodeID, Addr: s.cfg.Listen}
	for {
		for _, v := range s.cfg.Quorum {
			resp, err := s.forwardTo(ctx, v.Addr, req)
			if err == nil {
				err = decodeError(resp)
			}
			if err == nil {
				return nil
			}
			if !errors.Is(err, ErrNotController) {
				return fmt.Errorf("meta: join the cluster: %w", err)
			}
		}
		if err := s.pause(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("meta: join the cluster: no controller answered: %w", err)
		}
	}
}

// addNonvoter is the controller's side of join.
func (s *Store) addNonvoter(id int32, addr string) error {
	if s.raft.State() != raft.Leader {
		return fmt.Errorf("%w: join of %d", ErrNotController, id)
	}
	for _, v := range s.cfg.Quorum {
		if v.ID == id {
			return fmt.Errorf("meta: node %d is a voter and cannot join as a broker-only node", id)
		}
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("meta: join of %d: address %q: %v", id, addr, err)
	}
	err := s.raft.AddNonvoter(raft.ServerID(strconv.Itoa(int(id))), raft.ServerAddress(addr), 0, 10*time.Second).Error()
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return fmt.Errorf("%w: %v", ErrNotController, err)
	}
	return err
}
