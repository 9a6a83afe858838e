package meta

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// The controller hands its role to another voter, which every node then
// follows and which takes metadata changes at once; a node that does not
// lead has nothing to hand over; with the other voters gone there is no
// one to hand it to. DescribeQuorum, asked of any node, names the new
// leader at a later term.
func TestHandOver(t *testing.T) {
	stores, _ := openQuorum(t, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var leader *Store
	waitFor(t, "a controller", func() bool {
		for _, s := range stores {
			if s.raft.State() == raft.Leader {
				leader = s
				return true
			}
		}
		return false
	})
	before, err := stores[0].DescribeQuorum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stores {
		if s != leader {
			if to, err := s.HandOver(ctx); to != -1 || err != nil {
				t.Fatalf("handover by follower %d: %d, %v", s.cfg.NodeID, to, err)
			}
		}
	}
	// The followers must have been heard from for the leader to pick one.
	waitFor(t, "followers heard from", func() bool {
		_, err := leader.handoverTarget()
		return err == nil
	})
	// Changes proposed on every node while the leadership moves all
	// succeed: the old leader refuses them while it hands over, and
	// they go again to the new one.
	stop := make(chan struct{})
	proposeErrs := make(chan error, len(stores))
	proposed := make(chan int, len(stores))
	for _, s := range stores {
		go func() {
			n := 0
			for {
				select {
				case <-stop:
					proposeErrs <- nil
					proposed <- n
					return
				default:
				}
				if _, err := s.AllocateProducerIDs(ctx, 1); err != nil {
					proposeErrs <- fmt.Errorf("node %d: %w", s.cfg.NodeID, err)
					proposed <- n
					return
				}
				n++
			}
		}()
	}
	to, err := leader.HandOver(ctx)
	if err != nil || to < 1 || to == leader.cfg.NodeID {
		t.Fatalf("handover: to %d, %v", to, err)
	}
	close(stop)
	total := 0
	for range stores {
		if err := <-proposeErrs; err != nil {
			t.Errorf("a change proposed during the handover: %v", err)
		}
		total += <-proposed
	}
	t.Logf("%d changes proposed during the handover", total)
	waitFor(t, "every node following the new controller", func() bool {
		for _, s := range stores {
			if s.Cluster().ControllerID != to {
				return false
			}
		}
		return true
	})
	start := time.Now()
	if _, err := leader.AllocateProducerIDs(ctx, 10); err != nil {
		t.Fatalf("a change through the old controller: %v", err)
	}
	t.Logf("a change after the handover took %v", time.Since(start))
	after, err := leader.DescribeQuorum(ctx)
	if err != nil || after.LeaderID != to || after.LeaderEpoch <= before.LeaderEpoch {
		t.Fatalf("DescribeQuorum after the handover: %+v %v (before: %+v)", after, err, before)
	}

	// The new controller alone: nobody to hand over to.
	var next *Store
	for _, s := range stores {
		if s.cfg.NodeID == to {
			next = s
		} else {
			s.Close()
		}
	}
	waitFor(t, "the other voters silent", func() bool {
		_, err := next.handoverTarget()
		return errors.Is(err, ErrNoHandoverTarget) || next.raft.State() != raft.Leader
	})
	if got, err := next.HandOver(ctx); got != -1 || (err != nil && !errors.Is(err, ErrNoHandoverTarget)) {
		t.Fatalf("handover with no other voter: %d, %v", got, err)
	}
}
