package broker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The leader's replication state under a scripted sequence: the HW waits
// for every ISR member, a lagging follower leaves the ISR (through a
// pending change the controller commits), the HW then moves without it,
// and a follower that catches up joins again.
func TestReplicaStateShrinkAndExpand(t *testing.T) {
	t0 := time.Unix(1000, 0)
	lag := 10 * time.Second
	s := newReplicaState(1, 5, 7, []int32{1, 2, 3}, []int32{1, 2, 3}, 100, 90, lag, t0)
	if hw := s.highWatermark(); hw != 90 {
		t.Fatalf("HW before any follower fetched: %d, want the carried-over 90", hw)
	}
	s.localAppended(120)
	s.fetched(2, 120, t0.Add(time.Second))
	if hw := s.highWatermark(); hw != 90 {
		t.Fatalf("HW with follower 3 unknown: %d, want 90", hw)
	}
	s.fetched(3, 110, t0.Add(time.Second))
	if hw := s.highWatermark(); hw != 110 {
		t.Fatalf("HW: %d, want 110 (follower 3's LEO)", hw)
	}
	// Follower 3 stops fetching; follower 2 keeps up.
	now := t0.Add(time.Second)
	for range 20 {
		now = now.Add(time.Second)
		s.localAppended(s.leo + 10)
		s.fetched(2, s.leo, now)
	}
	if hw := s.highWatermark(); hw != 110 {
		t.Fatalf("HW moved past a lagging ISR member: %d", hw)
	}
	isr, ok := s.isrChange(now)
	if !ok || !slices.Equal(isr, []int32{1, 2}) {
		t.Fatalf("ISR change %v %v, want [1 2]", isr, ok)
	}
	if _, again := s.isrChange(now); again {
		t.Fatal("a second ISR change while one is in flight")
	}
	if hw := s.highWatermark(); hw != 110 {
		t.Fatalf("HW moved before the shrink was committed: %d", hw)
	}
	s.applyMetadata(8, []int32{1, 2, 3}, isr)
	if hw := s.highWatermark(); hw != s.leo {
		t.Fatalf("HW after the shrink: %d, want the LEO %d", hw, s.leo)
	}
	// Follower 3 comes back and catches up: it joins, and counts for the
	// HW as soon as the change is pending (the maximal ISR).
	now = now.Add(time.Second)
	s.fetched(3, s.leo, now)
	isr, ok = s.isrChange(now)
	if !ok || !sameSet(isr, []int32{1, 2, 3}) {
		t.Fatalf("expand: %v %v", isr, ok)
	}
	s.localAppended(s.leo + 5)
	s.fetched(2, s.leo, now)
	if hw := s.highWatermark(); hw != s.leo-5 {
		t.Fatalf("HW with follower 3 pending: %d, want %d", hw, s.leo-5)
	}
	// A refused change is forgotten and tried again.
	s.isrChangeFailed()
	if _, ok := s.isrChange(now); !ok {
		t.Fatal("no retry after a refused change")
	}
}

// Random fetches, appends, clock steps and ISR commits and refusals:
// the invariants hold after every step — hw <= leo, the HW never goes
// back, the HW is at most the LEO of every member of the maximal ISR
// that has fetched, the ISR stays within the replicas and holds the
// leader, and a member is dropped only after lagging replica.lag.time.max.ms.
func TestReplicaStateRandomized(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 99))
		t0 := time.Unix(0, 0)
		lag := time.Duration(1+r.IntN(10)) * time.Second
		n := 1 + r.IntN(5)
		replicas := make([]int32, n)
		for i := range replicas {
			replicas[i] = int32(i + 1)
		}
		s := newReplicaState(1, 1, 1, replicas, replicas, 0, 0, lag, t0)
		now := t0
		leos := map[int32]int64{}
		lastFetch := map[int32]time.Time{}
		lastHW := int64(0)
		partitionEpoch := int32(1)
		for step := range 300 {
			desc := fmt.Sprintf("seed %d step %d", seed, step)
			switch r.IntN(6) {
			case 0:
				s.localAppended(s.leo + int64(r.IntN(20)))
			case 1:
				now = now.Add(time.Duration(r.IntN(3000)) * time.Millisecond)
			case 2, 3:
				if n > 1 {
					id := int32(2 + r.IntN(n-1))
					off := leos[id] + int64(r.IntN(int(s.leo-leos[id])+1))
					leos[id] = off
					lastFetch[id] = now
					s.fetched(id, off, now)
				}
			case 4:
				if isr, ok := s.isrChange(now); ok {
					for _, id := range isr {
						if !slices.Contains(replicas, id) {
							t.Fatalf("%s: ISR %v names a non-replica", desc, isr)
						}
					}
					if !slices.Contains(isr, 1) {
						t.Fatalf("%s: ISR %v without the leader", desc, isr)
					}
					for _, id := range s.isr {
						if id != 1 && !slices.Contains(isr, id) && now.Sub(lastFetch[id]) <= lag && leos[id] >= s.leo {
							t.Fatalf("%s: dropped %d, which fetched at the LEO %v ago", desc, id, now.Sub(lastFetch[id]))
						}
					}
					if r.IntN(3) == 0 {
						s.isrChangeFailed()
					} else {
						partitionEpoch++
						s.applyMetadata(partitionEpoch, replicas, isr)
					}
				}
			case 5:
				// A stale or repeated commit changes nothing.
				before := slices.Clone(s.isr)
				s.applyMetadata(partitionEpoch, replicas, []int32{1})
				if !slices.Equal(before, s.isr) {
					t.Fatalf("%s: a stale partition epoch changed the ISR", desc)
				}
			}
			hw := s.highWatermark()
			if hw > s.leo {
				t.Fatalf("%s: hw %d > leo %d", desc, hw, s.leo)
			}
			if hw < lastHW {
				t.Fatalf("%s: hw went back from %d to %d", desc, lastHW, hw)
			}
			if hw > lastHW {
				for _, id := range s.maximalISR() {
					if id != 1 && leos[id] < hw {
						t.Fatalf("%s: hw %d above ISR member %d's LEO %d", desc, hw, id, leos[id])
					}
				}
			}
			lastHW = hw
		}
	}
}
