package meta

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The quorum's state as KRaft's DescribeQuorum reports it: the Raft
// leader, its term (Kafka's leader epoch), its commit index (the high
// watermark of the metadata log) and, for every voter and observer
// (non-voter), the last log index the leader knows it holds and when the
// leader last heard from it and last saw it caught up.
//
// hashicorp/raft keeps each follower's progress to itself, so the leader
// learns it from the AppendEntries answers that pass through its
// transport (progressTransport): every answer carries the follower's
// last log index, and heartbeats go out every tenth of the heartbeat
// timeout, so the figures are at most some tens of milliseconds old.

// raftHeartbeatTimeout is a cluster's Raft heartbeat timeout: a follower
// that has not heard from the leader for this long runs for election, and
// the leader heartbeats every tenth of it.
const raftHeartbeatTimeout = 500 * time.Millisecond

// ReplicaProgress is what the controller knows of one member's copy of
// the metadata log.
type ReplicaProgress struct {
	ID int32 `json:"id"`
	// Addr is the member's controller listener.
	Addr string `json:"addr"`
	// LogEndOffset is the index after the last entry it holds (Kafka's
	// log end offset), or -1 when not heard from since this controller
	// took over.
	LogEndOffset int64 `json:"logEndOffset"`
	// LastFetch is when the controller last heard from it, LastCaughtUp
	// when it last held everything the controller had; zero when never.
	LastFetch    time.Time `json:"lastFetch"`
	LastCaughtUp time.Time `json:"lastCaughtUp"`
	// DirectoryID is its metadata directory's id (directory.go), zero
	// until it has registered.
	DirectoryID [16]byte `json:"directoryId,omitzero"`
}

// QuorumInfo describes the controller quorum (Kafka's DescribeQuorum).
type QuorumInfo struct {
	LeaderID int32 `json:"leaderId"`
	// LeaderEpoch is the Raft term.
	LeaderEpoch int32 `json:"leaderEpoch"`
	// HighWatermark is the index after the last committed entry.
	HighWatermark int64             `json:"highWatermark"`
	Voters        []ReplicaProgress `json:"voters"`
	// Observers are the non-voters: broker-only nodes that replicate the
	// metadata log without voting.
	Observers []ReplicaProgress `json:"observers"`
}

// DescribeQuorum returns the quorum's state as the controller sees it,
// asking the controller when this node does not lead.
func (s *Store) DescribeQuorum(ctx context.Context) (QuorumInfo, error) {
	select {
	case <-s.closed:
		return QuorumInfo{}, ErrClosed
	default:
	}
	if s.mux == nil || s.raft.State() == raft.Leader {
		return s.describeQuorumLocal()
	}
	resp, err := s.forward(ctx, forwardRequest{Kind: "quorum"})
	if err != nil {
		return QuorumInfo{}, err
	}
	if err := decodeError(resp); err != nil {
		return QuorumInfo{}, err
	}
	if resp.Quorum == nil {
		return QuorumInfo{}, fmt.Errorf("meta: the controller sent no quorum description")
	}
	return *resp.Quorum, nil
}

// describeQuorumLocal is the controller's side of DescribeQuorum.
func (s *Store) describeQuorumLocal() (QuorumInfo, error) {
	if s.raft.State() != raft.Leader {
		return QuorumInfo{}, fmt.Errorf("%w: describe quorum", ErrNotController)
	}
	fut := s.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return QuorumInfo{}, fmt.Errorf("meta: describe quorum: %w", err)
	}
	now := s.cfg.Now()
	last := s.raft.LastIndex()
	q := QuorumInfo{
		LeaderID:      s.cfg.NodeID,
		LeaderEpoch:   int32(s.raft.CurrentTerm()),
		HighWatermark: int64(s.raft.CommitIndex()) + 1,
	}
	brokers := s.Cluster().Brokers
	for _, srv := range fut.Configuration().Servers {
		id, err := strconv.ParseInt(string(srv.ID), 10, 32)
		if err != nil {
			continue // not a server this package added
		}
		rp := ReplicaProgress{ID: int32(id), Addr: string(srv.Address), LogEndOffset: -1, DirectoryID: brokers[int32(id)].DirectoryID}
		if srv.ID == raft.ServerID(strconv.Itoa(int(s.cfg.NodeID))) {
			// The leader holds its own log: caught up now.
			rp.LogEndOffset, rp.LastFetch, rp.LastCaughtUp = int64(last)+1, now, now
			rp.DirectoryID = s.cfg.directoryID
			if s.mux == nil {
				rp.Addr = ""
			}
		} else if p, ok := s.progress.get(srv.ID, s.raft.CurrentTerm()); ok {
			rp.LogEndOffset = int64(p.lastLog) + 1
			rp.LastFetch, rp.LastCaughtUp = p.lastContact, p.caughtUp
		}
		if srv.Suffrage == raft.Voter {
			q.Voters = append(q.Voters, rp)
		} else {
			q.Observers = append(q.Observers, rp)
		}
	}
	byID := func(a, b ReplicaProgress) int { return int(a.ID) - int(b.ID) }
	slices.SortFunc(q.Voters, byID)
	slices.SortFunc(q.Observers, byID)
	return q, nil
}

// ControllerEndpoint splits a controller listener address into host and
// port, for the Nodes of a DescribeQuorum answer.
func ControllerEndpoint(addr string) (host string, port uint16, ok bool) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, false
	}
	return h, uint16(n), true
}

// progress is one member's replication progress as the leader last saw
// it.
type progress struct {
	term        uint64    // the leader's term when it answered
	lastLog     uint64    // its last log index
	lastContact time.Time // its last successful AppendEntries answer
	caughtUp    time.Time // the last answer at which it held the leader's whole log
}

// progressTracker records the AppendEntries answers the leader receives.
// It is written by raft's replication and heartbeat goroutines (one per
// follower) and read by DescribeQuorum.
type progressTracker struct {
	now func() time.Time

	mu    sync.Mutex // guards peers
	peers map[raft.ServerID]progress
}

func newProgressTracker(now func() time.Time) *progressTracker {
	return &progressTracker{now: now, peers: make(map[raft.ServerID]progress)}
}

// observe records one answer of follower id: req was sent when the
// leader's last log index was leaderLast. A failed call, or an answer
// from a newer term (the follower does not take this node for its
// leader), says nothing of the follower's log.
func (t *progressTracker) observe(id raft.ServerID, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse, leaderLast uint64) {
	if resp.Term != req.Term {
		return
	}
	last := resp.LastLog
	if resp.Success && len(req.Entries) > 0 {
		// The answer's LastLog is read before the entries are
		// appended; a success means the follower now holds them.
		last = max(last, req.Entries[len(req.Entries)-1].Index)
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peers[id]
	if p.term != req.Term {
		p = progress{term: req.Term}
	}
	p.lastLog, p.lastContact = last, now
	if last >= leaderLast {
		p.caughtUp = now
	}
	t.peers[id] = p
}

// get returns id's progress if it answered the leader of term: what it
// answered an earlier leader of this node is out of date.
func (t *progressTracker) get(id raft.ServerID, term uint64) (progress, bool) {
	if t == nil { // a quorum of one has no followers
		return progress{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[id]
	if !ok || p.term != term {
		return progress{}, false
	}
	return p, true
}

// progressTransport is the controller listener's Raft transport with the
// leader's AppendEntries answers recorded in a progressTracker. Heartbeats
// and the replication of single requests go through AppendEntries; a
// pipelined stream does not, but the heartbeats beside it keep the
// figures fresh.
type progressTransport struct {
	*raft.NetworkTransport
	tracker *progressTracker
	// lastIndex is the local Raft's last log index (0 before it runs).
	lastIndex func() uint64
}

// AppendEntries sends the request and records the answer.
func (t *progressTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	leaderLast := t.lastIndex()
	if err := t.NetworkTransport.AppendEntries(id, target, req, resp); err != nil {
		return err
	}
	t.tracker.observe(id, req, resp, leaderLast)
	return nil
}
