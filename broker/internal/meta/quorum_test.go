package meta

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// The tracker reads a follower's log end from AppendEntries answers: a
// heartbeat's LastLog, or the last entry a successful append carried; it
// counts the follower caught up only when it held the leader's whole log,
// ignores answers of another term, and forgets what an earlier term saw.
func TestProgressTracker(t *testing.T) {
	clock := time.Unix(1000, 0)
	tr := newProgressTracker(func() time.Time { return clock })
	const f = raft.ServerID("2")
	tick := func() { clock = clock.Add(time.Second) }

	if _, ok := tr.get(f, 5); ok {
		t.Fatal("progress of a follower never heard from")
	}
	// A heartbeat at term 5: the follower holds up to 7 of the leader's 9.
	tr.observe(f, &raft.AppendEntriesRequest{Term: 5}, &raft.AppendEntriesResponse{Term: 5, LastLog: 7, Success: true}, 9)
	p, ok := tr.get(f, 5)
	if !ok || p.lastLog != 7 || !p.lastContact.Equal(clock) || !p.caughtUp.IsZero() {
		t.Fatalf("after a lagging heartbeat: %+v %v", p, ok)
	}
	seen := clock
	tick()
	// An append of 8 and 9 succeeds: caught up.
	tr.observe(f, &raft.AppendEntriesRequest{Term: 5, Entries: []*raft.Log{{Index: 8}, {Index: 9}}}, &raft.AppendEntriesResponse{Term: 5, LastLog: 7, Success: true}, 9)
	p, _ = tr.get(f, 5)
	if p.lastLog != 9 || !p.caughtUp.Equal(clock) || !p.lastContact.Equal(clock) {
		t.Fatalf("after a successful append: %+v (first contact %v)", p, seen)
	}
	caught := clock
	tick()
	// A refused append (log mismatch) moves the contact time only.
	tr.observe(f, &raft.AppendEntriesRequest{Term: 5, Entries: []*raft.Log{{Index: 11}}}, &raft.AppendEntriesResponse{Term: 5, LastLog: 9}, 11)
	p, _ = tr.get(f, 5)
	if p.lastLog != 9 || !p.caughtUp.Equal(caught) || !p.lastContact.Equal(clock) {
		t.Fatalf("after a refused append: %+v", p)
	}
	tick()
	// An answer from a newer term says nothing of this leader's follower.
	tr.observe(f, &raft.AppendEntriesRequest{Term: 5}, &raft.AppendEntriesResponse{Term: 6, LastLog: 12}, 11)
	if p2, _ := tr.get(f, 5); p2 != p {
		t.Fatalf("an answer of term 6 changed term 5's progress: %+v, was %+v", p2, p)
	}
	// Progress seen while leading term 5 is not reported at term 7.
	if _, ok := tr.get(f, 7); ok {
		t.Fatal("term 5's progress reported at term 7")
	}
	tr.observe(f, &raft.AppendEntriesRequest{Term: 7}, &raft.AppendEntriesResponse{Term: 7, LastLog: 3}, 12)
	if p, ok := tr.get(f, 7); !ok || p.lastLog != 3 || !p.caughtUp.IsZero() {
		t.Fatalf("at term 7: %+v %v", p, ok)
	}
}
