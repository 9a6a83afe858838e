package group

import (
	"bytes"
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
)

func TestPartitionForMatchesJava(t *testing.T) {
	for _, c := range []struct {
		group string
		hash  int32 // Java's String.hashCode
	}{
		{"", 0},
		{"hello", 99162322},
		{"polygenelubricants", -2147483648}, // Utils.abs(MIN_VALUE) is 0
		{"\U0001F600", 0xD83D*31 + 0xDE00},  // one code point, two UTF-16 units
	} {
		want := (c.hash & 0x7fffffff) % 50
		if got := PartitionFor(c.group, 50); got != want {
			t.Errorf("PartitionFor(%q) = %d, want %d", c.group, got, want)
		}
	}
}

// A group forms: MEMBER_ID_REQUIRED, the initial delay gathers both
// members into one generation, the leader gets the metadata, SyncGroup
// hands out the leader's plan, and the group is Stable.
func TestJoinSyncStable(t *testing.T) {
	f := newFixture(t, nil)
	a := f.joinNew("g")
	f.clock.Advance(50 * time.Millisecond)
	b := f.joinNew("g")
	if a.answered() || b.answered() {
		t.Fatal("join answered inside the initial rebalance delay")
	}
	f.clock.Advance(100 * time.Millisecond) // the delay is extended once for b
	if a.answered() {
		t.Fatal("join answered before the extended delay")
	}
	f.clock.Advance(100 * time.Millisecond)
	ra, rb := a.get(), b.get()
	wantCode(t, "join a", ra.ErrorCode, nil)
	wantCode(t, "join b", rb.ErrorCode, nil)
	if ra.Generation != 1 || rb.Generation != 1 {
		t.Fatalf("generations %d, %d; want 1", ra.Generation, rb.Generation)
	}
	leader, follower := ra, rb
	if rb.LeaderID == rb.MemberID {
		leader, follower = rb, ra
	}
	if leader.LeaderID != leader.MemberID || len(leader.Members) != 2 || len(follower.Members) != 0 {
		t.Fatalf("leader %s got %d members, follower got %d", leader.LeaderID, len(leader.Members), len(follower.Members))
	}
	if d := f.describe("g"); d.State != "CompletingRebalance" {
		t.Fatalf("state %s", d.State)
	}
	wantCode(t, "heartbeat between join and sync", f.heartbeat("g", follower.MemberID, 1, nil), nil)
	wantCode(t, "commit while completing", f.commit("g", follower.MemberID, 1, "t", map[int32]int64{0: 1})[0], kerr.RebalanceInProgress)

	fs := f.sync("g", follower.MemberID, 1, nil)
	if fs.answered() {
		t.Fatal("follower's sync answered before the leader's")
	}
	ls := f.sync("g", leader.MemberID, 1, map[string]string{leader.MemberID: "L", follower.MemberID: "F"})
	if !ls.answered() || !fs.answered() {
		t.Fatal("syncs not answered after the leader's")
	}
	if string(ls.resp.MemberAssignment) != "L" || string(fs.resp.MemberAssignment) != "F" {
		t.Fatalf("assignments %q, %q", ls.resp.MemberAssignment, fs.resp.MemberAssignment)
	}
	d := f.describe("g")
	if d.State != "Stable" || d.Protocol != "range" || len(d.Members) != 2 {
		t.Fatalf("described %+v", d)
	}
	wantCode(t, "heartbeat", f.heartbeat("g", follower.MemberID, 1, nil), nil)
	wantCode(t, "heartbeat old generation", f.heartbeat("g", follower.MemberID, 0, nil), kerr.IllegalGeneration)
	wantCode(t, "heartbeat unknown", f.heartbeat("g", "nobody", 1, nil), kerr.UnknownMemberID)
	wantCode(t, "sync old generation", f.sync("g", follower.MemberID, 0, nil).wait(done).ErrorCode, kerr.IllegalGeneration)
}

// stableGroup forms a Stable group of n members and returns their join
// answers, leader first.
func (f *fixture) stableGroup(group string, n int, opts ...func(i int) []joinOpt) []*kmsg.JoinGroupResponse {
	f.t.Helper()
	var js []*pendingJoin
	for i := range n {
		var o []joinOpt
		for _, fn := range opts {
			o = append(o, fn(i)...)
		}
		if len(o) > 0 && hasInstance(o) {
			js = append(js, f.join(group, "", o...))
		} else {
			js = append(js, f.joinNew(group, o...))
		}
	}
	f.clock.Advance(time.Second)
	var out []*kmsg.JoinGroupResponse
	plan := map[string]string{}
	for _, j := range js {
		r := j.get()
		wantCode(f.t, "join", r.ErrorCode, nil)
		plan[r.MemberID] = "assign-" + r.MemberID
		if r.LeaderID == r.MemberID {
			out = append([]*kmsg.JoinGroupResponse{r}, out...)
		} else {
			out = append(out, r)
		}
	}
	for _, r := range out[1:] {
		f.sync(group, r.MemberID, r.Generation, nil)
	}
	if s := f.sync(group, out[0].MemberID, out[0].Generation, plan); !s.answered() || s.resp.ErrorCode != 0 {
		f.t.Fatalf("leader sync: %+v", s.resp)
	}
	return out
}

func hasInstance(o []joinOpt) bool {
	r := kmsg.NewPtrJoinGroupRequest()
	for _, fn := range o {
		fn(r)
	}
	return r.InstanceID != nil
}

// A member that stops heartbeating is removed after its session timeout;
// the others rebalance, and one that does not rejoin within the rebalance
// timeout is removed too.
func TestSessionAndRebalanceTimeouts(t *testing.T) {
	f := newFixture(t, nil)
	ms := f.stableGroup("g", 3, func(int) []joinOpt {
		return []joinOpt{withSession(10 * time.Second), withRebalance(5 * time.Second)}
	})
	keep, lazy, dead := ms[0], ms[1], ms[2]
	// keep and lazy heartbeat; dead does not, and its session ends.
	for i := 0; ; i++ {
		f.clock.Advance(3 * time.Second)
		code := f.heartbeat("g", keep.MemberID, 1, nil)
		if lc := f.heartbeat("g", lazy.MemberID, 1, nil); lc != code {
			t.Fatalf("lazy heartbeat %v, keep's %v", kerr.ErrorForCode(lc), kerr.ErrorForCode(code))
		}
		if code != 0 {
			wantCode(t, "heartbeat once dead expired", code, kerr.RebalanceInProgress)
			if i != 3 {
				t.Fatalf("rebalance after %v, want after the 10s session timeout", time.Duration(i+1)*3*time.Second)
			}
			break
		}
	}
	if d := f.describe("g"); d.State != "PreparingRebalance" || len(d.Members) != 2 {
		t.Fatalf("after the session timeout: %s with %d members", d.State, len(d.Members))
	}
	wantCode(t, "expired member", f.heartbeat("g", dead.MemberID, 1, nil), kerr.UnknownMemberID)
	j := f.join("g", keep.MemberID, withSession(10*time.Second), withRebalance(5*time.Second))
	f.clock.Advance(2 * time.Second)
	if j.answered() {
		t.Fatal("join answered before the rebalance timeout though a member has not rejoined")
	}
	f.clock.Advance(2 * time.Second)
	r := j.get()
	if r.Generation != 2 || r.LeaderID != keep.MemberID || len(r.Members) != 1 {
		t.Fatalf("after the rebalance timeout: generation %d leader %s members %d", r.Generation, r.LeaderID, len(r.Members))
	}
}

// A static member restarting within its session timeout replaces its old
// member id with no rebalance: same generation, same assignment; the old
// id is fenced.
func TestStaticMemberRestart(t *testing.T) {
	f := newFixture(t, nil)
	ms := f.stableGroup("g", 3, func(i int) []joinOpt {
		return []joinOpt{withInstance(string(rune('a' + i)))}
	})
	for i, old := range ms {
		inst := strings.SplitN(old.MemberID, "-", 2)[0]
		r := f.join("g", "", withInstance(inst)).get()
		wantCode(t, "rejoin", r.ErrorCode, nil)
		if r.Generation != 1 || r.MemberID == old.MemberID || !strings.HasPrefix(r.MemberID, inst+"-") {
			t.Fatalf("rejoin: generation %d member %s (was %s)", r.Generation, r.MemberID, old.MemberID)
		}
		if i == 0 {
			if !r.SkipAssignment || r.LeaderID != r.MemberID || len(r.Members) != 3 {
				t.Fatalf("restarted leader: skip %t leader %s members %d", r.SkipAssignment, r.LeaderID, len(r.Members))
			}
		} else if r.SkipAssignment || r.LeaderID == r.MemberID {
			t.Fatalf("restarted follower told to lead")
		}
		s := f.sync("g", r.MemberID, 1, nil)
		if !s.answered() || string(s.resp.MemberAssignment) != "assign-"+old.MemberID {
			t.Fatalf("restarted member's assignment %q, want its old one", s.resp.MemberAssignment)
		}
		wantCode(t, "old member id", f.heartbeat("g", old.MemberID, 1, &inst), kerr.FencedInstanceID)
		wantCode(t, "new member id", f.heartbeat("g", r.MemberID, 1, &inst), nil)
		if d := f.describe("g"); d.State != "Stable" {
			t.Fatalf("state %s after a static restart", d.State)
		}
	}

	// LeaveGroup v3+ by instance id removes a static member.
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 5
	req.Group = "g"
	inst, unknown := "b", "zz"
	req.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: &inst}, {InstanceID: &unknown}}
	resp := f.c.LeaveGroup(req)
	wantCode(t, "leave b", resp.Members[0].ErrorCode, nil)
	wantCode(t, "leave unknown", resp.Members[1].ErrorCode, kerr.UnknownMemberID)
	if d := f.describe("g"); d.State != "PreparingRebalance" || len(d.Members) != 2 {
		t.Fatalf("after leave: %s with %d members", d.State, len(d.Members))
	}
}

func TestJoinErrors(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxSize = 2 })
	wantCode(t, "short session", f.join("g", "", withSession(time.Second)).get().ErrorCode, kerr.InvalidSessionTimeout)
	wantCode(t, "unknown member", f.join("g", "who").get().ErrorCode, kerr.UnknownMemberID)
	wantCode(t, "no protocols", f.join("g", "", withProtocols(), withVersion(3)).get().ErrorCode, kerr.InconsistentGroupProtocol)
	wantCode(t, "empty group id", f.join("", "").get().ErrorCode, kerr.InvalidGroupID)
	ms := f.stableGroup("g", 2)
	f.stableGroup("h", 1)
	wantCode(t, "other protocol", f.join("h", "", withProtocols("roundrobin"), withVersion(3)).get().ErrorCode, kerr.InconsistentGroupProtocol)
	wantCode(t, "group full", f.join("g", "", withVersion(3)).get().ErrorCode, kerr.GroupMaxSizeReached)
	wantCode(t, "known member ok", f.heartbeat("g", ms[1].MemberID, 1, nil), nil)

	// A coordinator for some partitions only: NOT_COORDINATOR for the rest.
	c, err := New(Config{Partitions: 50, Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group = "g"
	wantCode(t, "not coordinator", c.Heartbeat(req).ErrorCode, kerr.NotCoordinator)
	c.Load(PartitionFor("g", 50), &slowPartition{release: make(chan struct{})})
	wantCode(t, "loading", c.Heartbeat(req).ErrorCode, kerr.CoordinatorLoadInProgress)
}

// slowPartition holds its loader until released (or the test ends).
type slowPartition struct {
	memPartition
	release chan struct{}
}

func (p *slowPartition) HighWatermark() int64 { return 1 }
func (p *slowPartition) Read(int64, int32) ([]byte, error) {
	select {
	case <-p.release:
	case <-time.After(100 * time.Millisecond):
	}
	return nil, nil
}

// The protocol is chosen by vote among those every member supports.
func TestProtocolVote(t *testing.T) {
	f := newFixture(t, nil)
	a := f.joinNew("g", withProtocols("cooperative-sticky", "range"))
	b := f.joinNew("g", withProtocols("range", "cooperative-sticky"))
	c := f.joinNew("g", withProtocols("cooperative-sticky", "range", "roundrobin"))
	f.clock.Advance(time.Second)
	for _, j := range []*pendingJoin{a, b, c} {
		if p := *j.get().Protocol; p != "cooperative-sticky" {
			t.Fatalf("chose %s", p)
		}
	}
}

// Offsets: simple commits, member commits, persistence across a restart
// of the coordinator, deletion and expiry.
func TestOffsetsPersistAndExpire(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.OffsetsRetention = time.Hour })
	wantCode(t, "simple commit", f.commit("simple", "", -1, "t", map[int32]int64{0: 5, 1: 7})[0], nil)
	wantCode(t, "generation for a missing group", f.commit("missing", "m", 3, "t", map[int32]int64{0: 1})[0], kerr.IllegalGeneration)
	ms := f.stableGroup("g", 2)
	wantCode(t, "member commit", f.commit("g", ms[1].MemberID, 1, "t", map[int32]int64{2: 42})[2], nil)
	wantCode(t, "stale generation", f.commit("g", ms[1].MemberID, 0, "t", map[int32]int64{2: 1})[2], kerr.IllegalGeneration)
	wantCode(t, "unknown member", f.commit("g", "x", 1, "t", map[int32]int64{2: 1})[2], kerr.UnknownMemberID)

	// Restart the coordinator on the same partitions: everything is back.
	f.c.Close()
	f.start(func(c *Config) { c.OffsetsRetention = time.Hour })
	if _, got := f.fetch("simple"); !maps.Equal(got, map[string]int64{"t/0": 5, "t/1": 7}) {
		t.Fatalf("simple after restart: %v", got)
	}
	if _, got := f.fetch("g"); !maps.Equal(got, map[string]int64{"t/2": 42}) {
		t.Fatalf("g after restart: %v", got)
	}
	d := f.describe("g")
	if d.State != "Stable" || len(d.Members) != 2 || !bytes.HasPrefix(d.Members[0].MemberAssignment, []byte("assign-")) {
		t.Fatalf("g after restart: %+v", d)
	}
	wantCode(t, "heartbeat after restart", f.heartbeat("g", ms[0].MemberID, 1, nil), nil)

	// Members that do not come back expire; the group empties.
	f.clock.Advance(11 * time.Second)
	f.clock.Advance(31 * time.Second)
	if d := f.describe("g"); d.State != "Empty" {
		t.Fatalf("g after its members expired: %s", d.State)
	}

	// Deleting a non-empty group fails; an empty one goes with its offsets.
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"simple", "nope"}
	dr := f.c.DeleteGroups(del)(context.Background())
	wantCode(t, "delete simple", dr.Groups[0].ErrorCode, nil)
	wantCode(t, "delete missing", dr.Groups[1].ErrorCode, kerr.GroupIDNotFound)
	if _, got := f.fetch("simple"); len(got) != 0 {
		t.Fatalf("simple after delete: %v", got)
	}

	// g's offsets expire an hour after it emptied.
	f.clock.Advance(30 * time.Minute)
	f.c.ExpireOffsets()
	if _, got := f.fetch("g"); len(got) != 1 {
		t.Fatalf("g's offsets expired early: %v", got)
	}
	f.clock.Advance(31 * time.Minute)
	f.c.ExpireOffsets()
	if _, got := f.fetch("g"); len(got) != 0 {
		t.Fatalf("g's offsets did not expire: %v", got)
	}
	list := f.c.ListGroups(kmsg.NewPtrListGroupsRequest())
	if len(list.Groups) != 0 {
		t.Fatalf("groups left: %+v", list.Groups)
	}

	// And after another restart the tombstones keep them gone.
	f.c.Close()
	f.start(nil)
	if _, got := f.fetch("g"); len(got) != 0 {
		t.Fatalf("g after restart: %v", got)
	}
	if list := f.c.ListGroups(kmsg.NewPtrListGroupsRequest()); len(list.Groups) != 0 {
		t.Fatalf("groups after restart: %+v", list.Groups)
	}
}

// A failed write is COORDINATOR_NOT_AVAILABLE and changes nothing.
func TestAppendFailure(t *testing.T) {
	f := newFixture(t, nil)
	p := f.parts[PartitionFor("g", testPartitions)]
	p.fail = context.DeadlineExceeded
	wantCode(t, "commit", f.commit("g", "", -1, "t", map[int32]int64{0: 1})[0], kerr.CoordinatorNotAvailable)
	if _, got := f.fetch("g"); len(got) != 0 {
		t.Fatalf("failed commit visible: %v", got)
	}
}

// rawPartition holds bytes read back as they are, whatever offset is
// asked for below its high watermark of 1.
type rawPartition struct {
	memPartition
	data []byte
}

func (p *rawPartition) HighWatermark() int64 { return 1 }
func (p *rawPartition) Read(off int64, _ int32) ([]byte, error) {
	if off >= 1 {
		return nil, nil
	}
	return p.data, nil
}

// Loading whatever bytes a partition holds never panics or hangs.
func FuzzLoad(f *testing.F) {
	f.Add(recordbatch.Encode([]recordbatch.Record{{Key: offsetKey("g", "t", 1), Value: offsetValue(offset{offset: 3})}}, time.Now(), 0, recordbatch.NoProducer))
	f.Add(recordbatch.Encode([]recordbatch.Record{{Key: groupKey("g")}}, time.Now(), 0, recordbatch.NoProducer))
	f.Add(recordbatch.Encode([]recordbatch.Record{markerRecord(true, 0)}, time.Now(), attrTransactional|attrControl, recordbatch.Producer{ID: 1, Epoch: 0, Sequence: -1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := New(Config{Partitions: 1, Clock: newManualClock()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Load(0, &rawPartition{data: data})
		if err := c.WaitLoaded(context.Background()); err != nil {
			t.Fatal(err)
		}
		c.ListGroups(kmsg.NewPtrListGroupsRequest())
	})
}

// A partition unloaded (its leadership gone) answers NOT_COORDINATOR, and
// a member waiting in JoinGroup is answered so at once; loaded again, it
// serves the group and offsets it had, replayed from the partition.
func TestUnloadAndReload(t *testing.T) {
	f := newFixture(t, nil)
	ms := f.stableGroup("g", 2)
	leader := ms[0]
	wantCode(t, "commit", f.commit("g", leader.MemberID, leader.Generation, "t", map[int32]int64{0: 5})[0], nil)
	// A new member starts a rebalance; its JoinGroup waits.
	waiting := f.joinNew("g")
	if waiting.answered() {
		t.Fatalf("join answered before the rebalance: %+v", waiting.resp)
	}

	idx := PartitionFor("g", testPartitions)
	f.c.Unload(idx)
	wantCode(t, "waiting join", waiting.get().ErrorCode, kerr.NotCoordinator)
	wantCode(t, "heartbeat", f.heartbeat("g", leader.MemberID, leader.Generation, nil), kerr.NotCoordinator)
	if code, _ := f.fetch("g"); code != kerr.NotCoordinator.Code {
		t.Fatalf("fetch: %v", kerr.ErrorForCode(code))
	}
	// Timers of the unloaded groups never fire.
	f.clock.Advance(time.Hour)

	f.c.Load(idx, f.parts[idx])
	if err := f.c.WaitLoaded(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, got := f.fetch("g"); code != 0 || got["t/0"] != 5 {
		t.Fatalf("fetch after reload: %v %v", kerr.ErrorForCode(code), got)
	}
	if d := f.describe("g"); d.ErrorCode != 0 || d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("group after reload: %v %s, %d members", kerr.ErrorForCode(d.ErrorCode), d.State, len(d.Members))
	}
}
