package meta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The controller: the node whose Raft leads. Besides applying every
// change, it
//
//   - keeps broker liveness in memory: brokers heartbeat every
//     fraction of broker.session.timeout.ms (Heartbeat); a broker silent
//     for the whole timeout is fenced through Raft (opFenceBroker), and
//     one that heartbeats again is unfenced (opUnfenceBroker). A new
//     controller knows no heartbeats yet, so it gives every broker a full
//     session from the moment it took over before fencing anyone;
//   - elects partition leaders, inside the state machine so every node
//     agrees (electLeaders, run by every command that can change who may
//     lead: fencing, unfencing, registration, config changes);
//   - accepts ISR changes from partition leaders (AlterPartition),
//     checked against the leader epoch and the partition epoch so a
//     deposed leader or a stale request cannot change the ISR.

// Errors of the controller's partition operations.
var (
	// ErrFencedLeaderEpoch: the request carries a leader epoch (or leader)
	// that is no longer current.
	ErrFencedLeaderEpoch = errors.New("meta: fenced leader epoch")
	// ErrStalePartitionEpoch: the ISR changed since the leader read it
	// (Kafka's INVALID_UPDATE_VERSION).
	ErrStalePartitionEpoch = errors.New("meta: partition epoch is stale")
	// ErrIneligibleReplica: a replica that may not join the ISR (fenced,
	// or not a replica).
	ErrIneligibleReplica = errors.New("meta: ineligible replica")
	// ErrUnknownBroker: a heartbeat or fence for a broker never registered.
	ErrUnknownBroker = errors.New("meta: unknown broker")
)

// liveness is the controller's record of heartbeats. Only the node that
// leads uses it; it is reset when leadership is gained.
type liveness struct {
	timeout time.Duration

	mu sync.Mutex // guards the following
	// seen is each broker's last heartbeat (monotonic time).
	seen map[int32]time.Time
	// since is when this node last became controller.
	since time.Time
}

func newLiveness(timeout time.Duration) *liveness {
	return &liveness{timeout: timeout, seen: make(map[int32]time.Time)}
}

func (l *liveness) beat(id int32, now time.Time) {
	l.mu.Lock()
	l.seen[id] = now
	l.mu.Unlock()
}

func (l *liveness) reset(now time.Time) {
	l.mu.Lock()
	clear(l.seen)
	l.since = now
	l.mu.Unlock()
}

// alive reports whether broker id heartbeated within the session timeout,
// counting the takeover as a heartbeat of every broker.
func (l *liveness) alive(id int32, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	last := l.since
	if t, ok := l.seen[id]; ok && t.After(last) {
		last = t
	}
	return now.Sub(last) < l.timeout
}

// heard reports whether broker id heartbeated to this controller within
// the session timeout (the takeover grace does not count).
func (l *liveness) heard(id int32, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.seen[id]
	return ok && now.Sub(t) < l.timeout
}

// Heartbeat tells the controller that broker id is alive. Brokers call it
// every fraction of the session timeout. On a quorum of one it does
// nothing.
func (s *Store) Heartbeat(ctx context.Context, id int32) error {
	if s.mux == nil {
		return nil
	}
	if s.raft.State() == raft.Leader {
		return s.beatLocal(id)
	}
	resp, err := s.forward(ctx, forwardRequest{Kind: "heartbeat", Broker: id})
	if err != nil {
		return err
	}
	return decodeError(resp)
}

func (s *Store) beatLocal(id int32) error {
	if s.raft.State() != raft.Leader {
		return fmt.Errorf("%w: heartbeat from %d", ErrNotController, id)
	}
	if _, ok := s.Cluster().Brokers[id]; !ok {
		return fmt.Errorf("%w: %d", ErrUnknownBroker, id)
	}
	s.live.beat(id, time.Now())
	return nil
}

// controllerLoop runs on every voter; while its node leads it chooses the
// cluster id once and fences and unfences brokers by their heartbeats.
func (s *Store) controllerLoop() {
	tick := max(s.cfg.SessionTimeout/8, 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	leading := false
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
		}
		if s.raft.State() != raft.Leader {
			leading = false
			continue
		}
		now := time.Now()
		if !leading {
			leading = true
			s.live.reset(now)
			// Commit everything the previous controller left before
			// acting on the state.
			if err := s.raft.Barrier(5 * time.Second).Error(); err != nil {
				leading = false
				continue
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.controlOnce(ctx, now)
		cancel()
	}
}

// controlOnce is one pass of the controller's duties.
func (s *Store) controlOnce(ctx context.Context, now time.Time) {
	cl := s.Cluster()
	if cl.ClusterID == "" {
		if _, err := s.applyLocal(ctx, &command{Op: opInitCluster, ClusterID: newClusterID()}); err != nil {
			return
		}
	}
	for _, id := range sortedBrokerIDs(cl.Brokers) {
		b := cl.Brokers[id]
		switch {
		case !b.Fenced && !s.live.alive(id, now):
			s.cfg.Logger.Warn("fencing broker: no heartbeat within the session timeout", "broker", id, "timeout", s.cfg.SessionTimeout)
			s.applyLocal(ctx, &command{Op: opFenceBroker, BrokerID: id})
		case b.Fenced && !b.ShuttingDown && s.live.heard(id, now):
			s.cfg.Logger.Info("unfencing broker", "broker", id)
			s.applyLocal(ctx, &command{Op: opUnfenceBroker, BrokerID: id})
		}
	}
}

func sortedBrokerIDs(m map[int32]Broker) []int32 {
	ids := make([]int32, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// PartitionChange is an AlterPartition request: the partition's leader
// asks to set the ISR. LeaderEpoch and PartitionEpoch are what the leader
// last saw; the change applies only if both are still current.
type PartitionChange struct {
	Topic          string   `json:"topic"`
	TopicID        [16]byte `json:"topicId"`
	Index          int32    `json:"index"`
	Leader         int32    `json:"leader"`
	LeaderEpoch    int32    `json:"leaderEpoch"`
	PartitionEpoch int32    `json:"partitionEpoch"`
	ISR            []int32  `json:"isr"`
}

// AlterPartition changes a partition's ISR (Kafka's AlterPartition) and
// returns the partition as applied. It fails with ErrFencedLeaderEpoch
// when the requester no longer leads at that epoch, ErrStalePartitionEpoch
// when the ISR changed meanwhile, ErrIneligibleReplica when the new ISR
// names a fenced broker or a non-replica or leaves out the leader.
func (s *Store) AlterPartition(ctx context.Context, ch PartitionChange) (Partition, error) {
	if err := s.propose(ctx, &command{Op: opAlterPartition, Change: &ch}); err != nil {
		return Partition{}, err
	}
	t := s.Cluster().Topics[ch.Topic]
	if t == nil || int(ch.Index) >= len(t.Partitions) {
		return Partition{}, fmt.Errorf("%w: %s", ErrUnknownTopic, ch.Topic)
	}
	return t.Partitions[ch.Index], nil
}

// applyAlterPartition checks and applies an ISR change.
func (s *state) applyAlterPartition(ch *PartitionChange) error {
	t := s.Topics[ch.Topic]
	if t == nil || t.ID != ch.TopicID || ch.Index < 0 || int(ch.Index) >= len(t.Partitions) {
		return fmt.Errorf("%w: %s-%d", ErrUnknownTopic, ch.Topic, ch.Index)
	}
	p := t.Partitions[ch.Index]
	if ch.LeaderEpoch != p.LeaderEpoch || ch.Leader != p.Leader {
		return fmt.Errorf("%w: %s-%d leader %d epoch %d, request from %d at epoch %d", ErrFencedLeaderEpoch, ch.Topic, ch.Index, p.Leader, p.LeaderEpoch, ch.Leader, ch.LeaderEpoch)
	}
	if ch.PartitionEpoch != p.PartitionEpoch {
		return fmt.Errorf("%w: %s-%d at partition epoch %d, request at %d", ErrStalePartitionEpoch, ch.Topic, ch.Index, p.PartitionEpoch, ch.PartitionEpoch)
	}
	if !slices.Contains(ch.ISR, p.Leader) {
		return fmt.Errorf("%w: the ISR must hold the leader %d", ErrIneligibleReplica, p.Leader)
	}
	for i, id := range ch.ISR {
		if !slices.Contains(p.Replicas, id) || slices.Contains(ch.ISR[:i], id) {
			return fmt.Errorf("%w: %d is not a replica of %s-%d (or is named twice)", ErrIneligibleReplica, id, ch.Topic, ch.Index)
		}
		if b, ok := s.Brokers[id]; (!ok || b.Fenced) && !slices.Contains(p.ISR, id) {
			return fmt.Errorf("%w: broker %d is fenced", ErrIneligibleReplica, id)
		}
	}
	nt := cloneTopic(t)
	np := &nt.Partitions[ch.Index]
	np.ISR = slices.Clone(ch.ISR)
	np.PartitionEpoch++
	s.Topics[ch.Topic] = nt
	s.completeReassignment(ch.Topic, ch.Index) // a new replica may have joined
	return nil
}

// fence marks a broker fenced, takes it out of every ISR it is not the
// last member of (a partition whose whole ISR is gone keeps its last
// member, which alone may lead it again cleanly), and elects new leaders
// for what it led.
func (s *state) fence(id int32) error {
	b, ok := s.Brokers[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrUnknownBroker, id)
	}
	b.Fenced = true
	s.Brokers[id] = b
	for name, t := range s.Topics {
		var nt *Topic
		for i, p := range t.Partitions {
			if !slices.Contains(p.ISR, id) || len(p.ISR) == 1 {
				continue
			}
			if nt == nil {
				nt = cloneTopic(t)
			}
			np := &nt.Partitions[i]
			np.ISR = slices.DeleteFunc(np.ISR, func(r int32) bool { return r == id })
			np.PartitionEpoch++
		}
		if nt != nil {
			s.Topics[name] = nt
		}
	}
	s.electLeaders()
	return nil
}

// restarted moves every replicated partition broker id leads to a new
// leader epoch, keeping it leader: it registered from a new process,
// which may have come back with less of a log than its followers hold
// (a tail it had not written to disk when it was killed, which they had
// fetched). Followers find where their logs part from the leader's by
// epochs (OffsetForLeaderEpoch), so had it led on at the old epoch, what
// it wrote next over offsets they hold would differ from their copies
// at the same epoch, and they would never see it. At a new epoch they
// cut their logs back to its end first. (In KRaft a broker registering
// anew starts fenced, which moves its leaderships elsewhere.) A
// partition of one replica has no follower to disagree with.
func (s *state) restarted(id int32) {
	for name, t := range s.Topics {
		var nt *Topic
		for i, p := range t.Partitions {
			if p.Leader != id || len(p.Replicas) < 2 {
				continue
			}
			if nt == nil {
				nt = cloneTopic(t)
			}
			np := &nt.Partitions[i]
			np.LeaderEpoch++
			np.PartitionEpoch++
		}
		if nt != nil {
			s.Topics[name] = nt
		}
	}
}

func (s *state) unfence(id int32) error {
	b, ok := s.Brokers[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrUnknownBroker, id)
	}
	b.Fenced = false
	s.Brokers[id] = b
	s.electLeaders()
	return nil
}

// uncleanAllowed reports unclean.leader.election.enable for a topic: its
// own config, else the cluster-wide dynamic default, else false.
func (s *state) uncleanAllowed(t *Topic) bool {
	if v, ok := t.Configs["unclean.leader.election.enable"]; ok {
		return v == "true"
	}
	return s.BrokerConfigs[""]["unclean.leader.election.enable"] == "true"
}

// electLeaders gives every partition whose leader is gone (-1 or fenced)
// a new leader where the rules allow one (see ElectLeader).
func (s *state) electLeaders() {
	live := func(id int32) bool {
		b, ok := s.Brokers[id]
		return ok && !b.Fenced
	}
	for name, t := range s.Topics {
		var nt *Topic
		for i, p := range t.Partitions {
			np, changed := ElectLeader(p, live, s.uncleanAllowed(t))
			if !changed {
				continue
			}
			if nt == nil {
				nt = cloneTopic(t)
			}
			nt.Partitions[i] = np
		}
		if nt != nil {
			s.Topics[name] = nt
		}
	}
}

// ElectLeader applies the leader election rules to one partition:
//
//   - a live leader stays;
//   - otherwise the first replica, in replica order, that is in the ISR
//     and live leads (a clean election);
//   - otherwise, when unclean election is allowed, the first live replica
//     leads and the ISR becomes just it (records it lacks are lost);
//   - otherwise the partition has no leader (-1) and keeps its ISR, so a
//     member that returns can lead it again.
//
// Every change of leader, to -1 included, bumps the leader epoch (fencing
// the old leader's writes and followers' fetches at the old epoch), and
// every change bumps the partition epoch. It reports whether p changed.
func ElectLeader(p Partition, live func(int32) bool, unclean bool) (Partition, bool) {
	if p.Leader >= 0 && live(p.Leader) {
		return p, false
	}
	next := int32(-1)
	isr := p.ISR
	for _, r := range p.Replicas {
		if slices.Contains(p.ISR, r) && live(r) {
			next = r
			break
		}
	}
	if next < 0 && unclean {
		for _, r := range p.Replicas {
			if live(r) {
				next = r
				isr = []int32{r}
				break
			}
		}
	}
	if next == p.Leader {
		return p, false
	}
	np := clonePartition(p)
	np.Leader = next
	np.ISR = slices.Clone(isr)
	np.LeaderEpoch++
	np.PartitionEpoch++
	return np, true
}
