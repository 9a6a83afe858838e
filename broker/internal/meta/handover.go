package meta

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// Controller handover. A controller that stops without a word leaves the
// quorum leaderless until the other voters' heartbeat timeout runs out
// and one of them wins an election: a second or more in which no
// metadata changes (topic creations, ISR changes, fencing, leader
// elections) can be made. KRaft's leader resigns instead (EndQuorumEpoch);
// here the controller hands its Raft leadership to a caught-up voter
// first (hashicorp/raft's LeadershipTransferToServer, which makes sure
// the target has the whole log and then tells it to start an election at
// once), and stops once that voter leads.

// ErrNoHandoverTarget is returned by HandOver when no other voter has
// been heard from within the heartbeat timeout.
var ErrNoHandoverTarget = errors.New("meta: no live voter to hand the controller over to")

// HandOver moves the controller role to another voter when this node is
// the controller, and waits (within ctx) until this node sees the new
// controller lead. It returns the new controller's id, or -1 with a nil
// error when there was nothing to hand over (a quorum of one, or this
// node does not lead).
func (s *Store) HandOver(ctx context.Context) (int32, error) {
	if s.mux == nil || s.raft.State() != raft.Leader {
		return -1, nil
	}
	target, err := s.handoverTarget()
	if err != nil {
		return -1, err
	}
	// The transfer's future ends once the target was told to run for
	// election (or after an election timeout); it does not see ctx.
	fut := s.raft.LeadershipTransferToServer(raft.ServerID(strconv.Itoa(int(target.ID))), raft.ServerAddress(target.Addr))
	done := make(chan error, 1)
	go func() { done <- fut.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return -1, fmt.Errorf("meta: hand the controller over to %d: %w", target.ID, err)
		}
	case <-ctx.Done():
		return -1, fmt.Errorf("meta: hand the controller over to %d: %w", target.ID, ctx.Err())
	}
	// Wait until this node follows a leader other than itself: the
	// other voters learn of it from the same heartbeats.
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if id := s.controllerID(); id >= 0 && id != s.cfg.NodeID && s.raft.State() == raft.Follower {
			return id, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("meta: waiting for %d to lead after the handover: %w", target.ID, ctx.Err())
		case <-s.closed:
			return -1, ErrClosed
		case <-t.C:
		}
	}
}

// handoverTarget picks the voter to take over: of the voters heard from
// within the last heartbeat timeout (the others are down or cut off), the
// one holding the most of the log. Raft sends it whatever it lacks before
// telling it to run, so the election it wins loses nothing committed.
func (s *Store) handoverTarget() (ReplicaProgress, error) {
	q, err := s.describeQuorumLocal()
	if err != nil {
		return ReplicaProgress{}, err
	}
	now := s.cfg.Now()
	var best ReplicaProgress
	found := false
	for _, v := range q.Voters {
		if v.ID == s.cfg.NodeID || v.LastFetch.IsZero() || now.Sub(v.LastFetch) > raftHeartbeatTimeout {
			continue
		}
		if !found || v.LogEndOffset > best.LogEndOffset {
			best, found = v, true
		}
	}
	if !found {
		return ReplicaProgress{}, ErrNoHandoverTarget
	}
	return best, nil
}
