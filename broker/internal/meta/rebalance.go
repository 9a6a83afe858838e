package meta

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// Automatic preferred-leader election (auto.leader.rebalance.enable).
// After a broker comes back, the partitions it prefers (it is first in
// their replica lists) are led by others until someone elects it again:
// every LeaderImbalanceCheckInterval the controller counts, per live
// broker, the partitions it prefers but does not lead, and when that is
// more than LeaderImbalancePercentage of the partitions it prefers, runs
// a preferred election of those whose preferred replica is in the ISR.

// leaderRebalanceTimeout bounds one automatic election.
const leaderRebalanceTimeout = 10 * time.Second

// rebalanceLoop runs on every voter and acts while its node leads.
func (s *Store) rebalanceLoop() {
	t := time.NewTicker(s.cfg.LeaderImbalanceCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
		}
		if s.raft.State() != raft.Leader {
			continue
		}
		parts := imbalanced(s.Cluster(), s.cfg.LeaderImbalancePercentage)
		if len(parts) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), leaderRebalanceTimeout)
		res, err := s.ElectLeaders(ctx, ElectPreferred, parts)
		cancel()
		if err != nil {
			s.cfg.Logger.Info("leader rebalance", "err", err)
			continue
		}
		moved := 0
		for _, e := range res {
			if e == nil {
				moved++
			}
		}
		s.cfg.Logger.Info("leader rebalance: preferred leaders elected", "partitions", moved)
	}
}

// imbalanced lists the partitions a preferred election should move: those
// whose preferred replica is live, in the ISR and not leading, of the
// brokers whose share of such partitions is above percent.
func imbalanced(cl *Cluster, percent int) []PartitionRef {
	prefers := map[int32]int{}
	movable := map[int32][]PartitionRef{}
	notLed := map[int32]int{}
	for _, name := range slices.Sorted(maps.Keys(cl.Topics)) {
		for _, p := range cl.Topics[name].Partitions {
			if len(p.Replicas) == 0 {
				continue
			}
			pref := p.Replicas[0]
			if b, ok := cl.Brokers[pref]; !ok || b.Fenced {
				continue
			}
			prefers[pref]++
			if p.Leader == pref {
				continue
			}
			notLed[pref]++
			if slices.Contains(p.ISR, pref) {
				movable[pref] = append(movable[pref], PartitionRef{name, p.Index})
			}
		}
	}
	var out []PartitionRef
	for _, id := range slices.Sorted(maps.Keys(prefers)) {
		if notLed[id]*100 > percent*prefers[id] {
			out = append(out, movable[id]...)
		}
	}
	return out
}
