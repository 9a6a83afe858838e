package broker

import (
	"slices"
	"time"
)

// Partition replication, as Kafka's.
//
// Every partition has a leader, chosen by the controller (package
// broker/internal/meta) from the ISR, and followers. Followers copy the
// leader's log by sending it Fetch requests with their replica id
// (replica_fetcher.go); a follower's fetch offset is its log end offset
// (LEO), which is how the leader learns each follower's progress. The
// leader's replication state is replicaState below, a thread-unsafe
// state machine that its partition owns (held under partition.mu and
// changed only through the partition's methods, partition_replication.go):
//
//	  leader appends        follower fetches at LEO f     metadata change
//	        |                        |                           |
//	  localAppended(leo)      fetched(id, f, now)        applyMetadata(...)
//	        \________________________|___________________________/
//	                                 v
//	             highWatermark(): min LEO over the maximal ISR
//	             isrChange(now): shrink laggards, add caught-up replicas
//	                                 |
//	          AlterPartition through the controller (Raft), epoch-checked
//
// The high watermark (HW) is the smallest LEO among the ISR members;
// consumers read below it and acks=all produces answer once it covers
// their batch. A follower that has not caught up with the leader's LEO
// within replica.lag.time.max.ms leaves the ISR; a replica whose LEO
// reaches the HW (and the start of the leader's epoch) joins it. ISR
// changes go to the controller as AlterPartition requests naming the
// leader epoch and partition epoch they were based on; one is in flight
// at a time. While one is, the HW is computed over the "maximal" ISR —
// the committed ISR plus members being added — so the HW never counts on
// a replica the controller may not have accepted, nor moves past one
// that is being removed before the removal is committed.
//
// Invariants (checked by the randomized test of replicaState):
//   - hw <= leo, and hw never decreases while the leader epoch is
//     unchanged;
//   - isr ⊆ replicas, and self ∈ isr while leading;
//   - leaderEpoch and partitionEpoch only grow;
//   - the HW only counts replicas in the maximal ISR.

// followerProgress is what the leader knows of one follower.
type followerProgress struct {
	// leo is the follower's log end offset as of its last fetch; -1 until
	// it fetches at this leader epoch.
	leo int64
	// caughtUp is the last time the follower was known to have every
	// record the leader had (Kafka's lastCaughtUpTimeMs).
	caughtUp time.Time
	// lastFetchLEO and lastFetch are the leader's LEO at the follower's
	// previous fetch and when it was: a fetch at or past lastFetchLEO
	// proves the follower was caught up at lastFetch.
	lastFetchLEO int64
	lastFetch    time.Time
}

// replicaState is the leader's replication state of one partition.
type replicaState struct {
	self           int32
	leaderEpoch    int32
	partitionEpoch int32
	// epochStart is the leader's LEO when it became leader at
	// leaderEpoch: a replica joins the ISR only once it has reached it.
	epochStart int64
	replicas   []int32
	// isr is the ISR as last committed by the controller.
	isr []int32
	// pending is the ISR an AlterPartition in flight asks for, nil when
	// none is.
	pending []int32
	// leo is the leader's own log end offset, as far as acknowledgements
	// may count on it (durable when the topic fsyncs before acking).
	leo int64
	// hw is the high watermark computed so far.
	hw        int64
	followers map[int32]*followerProgress
	// lagMax is replica.lag.time.max.ms.
	lagMax time.Duration
}

// newReplicaState starts leading at leaderEpoch with the given ISR, the
// local LEO and the HW carried over (a new leader's HW never goes back).
func newReplicaState(self int32, leaderEpoch, partitionEpoch int32, replicas, isr []int32, leo, hw int64, lagMax time.Duration, now time.Time) *replicaState {
	s := &replicaState{
		self:           self,
		leaderEpoch:    leaderEpoch,
		partitionEpoch: partitionEpoch,
		epochStart:     leo,
		replicas:       slices.Clone(replicas),
		isr:            slices.Clone(isr),
		leo:            leo,
		hw:             min(hw, leo),
		followers:      make(map[int32]*followerProgress),
		lagMax:         lagMax,
	}
	for _, r := range replicas {
		if r != self {
			// Kafka gives every follower a full lag period from the
			// election before it can be dropped.
			s.followers[r] = &followerProgress{leo: -1, caughtUp: now, lastFetchLEO: -1}
		}
	}
	return s
}

// applyMetadata takes a newer committed ISR (same leader epoch) from the
// controller: it ends any change in flight, whether it was this one or
// the controller's own (a fenced broker leaves every ISR).
func (s *replicaState) applyMetadata(partitionEpoch int32, replicas, isr []int32) {
	if partitionEpoch <= s.partitionEpoch {
		return
	}
	s.partitionEpoch = partitionEpoch
	s.replicas = slices.Clone(replicas)
	s.isr = slices.Clone(isr)
	s.pending = nil
	for _, r := range replicas {
		if _, ok := s.followers[r]; !ok && r != s.self {
			s.followers[r] = &followerProgress{leo: -1, lastFetchLEO: -1}
		}
	}
}

// localAppended records the leader's own LEO.
func (s *replicaState) localAppended(leo int64) {
	s.leo = max(s.leo, leo)
}

// fetched records a follower's fetch at offset (its LEO).
func (s *replicaState) fetched(id int32, offset int64, now time.Time) {
	f, ok := s.followers[id]
	if !ok {
		return
	}
	f.leo = offset
	switch {
	case offset >= s.leo:
		f.caughtUp = now
	case offset >= f.lastFetchLEO && f.lastFetchLEO >= 0 && f.lastFetch.After(f.caughtUp):
		f.caughtUp = f.lastFetch
	}
	f.lastFetchLEO, f.lastFetch = s.leo, now
}

// maximalISR is the ISR the HW is computed over: the committed ISR plus
// the members a change in flight adds.
func (s *replicaState) maximalISR() []int32 {
	if s.pending == nil {
		return s.isr
	}
	out := slices.Clone(s.isr)
	for _, r := range s.pending {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// highWatermark advances the HW to the smallest LEO of the maximal ISR
// and returns it. A member that has not fetched at this epoch holds it
// where it is.
func (s *replicaState) highWatermark() int64 {
	hw := s.leo
	for _, r := range s.maximalISR() {
		if r == s.self {
			continue
		}
		f := s.followers[r]
		if f == nil || f.leo < 0 {
			return s.hw
		}
		hw = min(hw, f.leo)
	}
	if hw > s.hw {
		s.hw = hw
	}
	return s.hw
}

// isrChange returns the ISR to ask the controller for, if it should
// change and no change is in flight: members (other than the leader) not
// caught up within lagMax leave, replicas that have reached the HW and
// the start of this epoch join. The returned ISR becomes pending.
func (s *replicaState) isrChange(now time.Time) ([]int32, bool) {
	if s.pending != nil {
		return nil, false
	}
	next := make([]int32, 0, len(s.replicas))
	for _, r := range s.isr {
		if r == s.self {
			next = append(next, r)
			continue
		}
		if f := s.followers[r]; f != nil && now.Sub(f.caughtUp) <= s.lagMax {
			next = append(next, r)
		}
	}
	for _, r := range s.replicas {
		if r == s.self || slices.Contains(s.isr, r) {
			continue
		}
		f := s.followers[r]
		if f != nil && f.leo >= 0 && f.leo >= s.hw && f.leo >= s.epochStart && now.Sub(f.caughtUp) <= s.lagMax {
			next = append(next, r)
		}
	}
	if !slices.Contains(next, s.self) {
		next = append([]int32{s.self}, next...)
	}
	if sameSet(next, s.isr) {
		return nil, false
	}
	s.pending = next
	return slices.Clone(next), true
}

// isrChangeFailed forgets a change the controller refused or never
// answered, so the next isrChange can try again.
func (s *replicaState) isrChangeFailed() { s.pending = nil }

// inSync is the committed ISR's size, what min.insync.replicas is
// checked against.
func (s *replicaState) inSync() int { return len(s.isr) }

func sameSet(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
