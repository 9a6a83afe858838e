package main

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The group coordinator: the classic consumer group protocol (JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup), in memory, so that brokerbench's
// many-clients workload (two groups of two franz-go consumers) runs
// against the ceiling as it does against real brokers. Members choose
// their assignment themselves (the leader's balancer, cooperative-sticky
// by default); the coordinator only gathers the members, passes the
// leader their metadata and hands out what the leader assigned.
//
// Not here: static membership (instance ids are ignored), KIP-394's
// MEMBER_ID_REQUIRED round trip (a new member gets its id in its first
// join), KIP-848, Kafka's initial rebalance delay.

// groupState is where a group is in a rebalance.
type groupState int

const (
	groupEmpty   groupState = iota // no members
	groupJoining                   // gathering the members' JoinGroups
	groupSyncing                   // joined; waiting for the leader's assignment
	groupStable                    // every member has its assignment
)

// member is one member of a group.
type member struct {
	id        string
	protocols []kmsg.JoinGroupRequestProtocol
	session   time.Duration // heartbeats must come at least this often
	rebalance time.Duration // how long a rebalance waits for the member to rejoin
	joined    bool          // has joined in the current round
	lastSeen  time.Time
}

// joinRound is one join phase: those waiting in JoinGroup wait on done,
// then read the outcome, which does not change after done is closed.
type joinRound struct {
	done       chan struct{}
	timer      *time.Timer
	generation int32
	protocol   string
	leader     string
	members    []kmsg.JoinGroupResponseMember // for the leader
}

// syncRound is one sync phase: the members wait on done for the leader's
// assignments, or for err when a new rebalance starts first.
type syncRound struct {
	done        chan struct{}
	err         int16
	assignments map[string][]byte
}

// group is one consumer group.
type group struct {
	name         string
	state        groupState
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	join         *joinRound
	sync         *syncRound
}

// coordinator is every group and the offsets committed for them. host
// and port are this broker's, which FindCoordinator answers.
type coordinator struct {
	host    string
	port    int32
	mu      sync.Mutex
	groups  map[string]*group
	nextID  int64
	offsets map[offsetKey]int64
}

func newCoordinator(addr *net.TCPAddr) *coordinator {
	return &coordinator{host: addr.IP.String(), port: int32(addr.Port), groups: map[string]*group{}, offsets: map[offsetKey]int64{}}
}

// groupFor returns name's group, making it empty if it does not exist.
// c.mu must be held.
func (c *coordinator) groupFor(name string) *group {
	g, ok := c.groups[name]
	if !ok {
		g = &group{name: name, members: map[string]*member{}}
		c.groups[name] = g
	}
	return g
}

// lookup returns name's group, or a new empty one not kept (a request
// about a group that does not exist creates none). c.mu must be held.
func (c *coordinator) lookup(name string) *group {
	if g, ok := c.groups[name]; ok {
		return g
	}
	return &group{name: name, members: map[string]*member{}}
}

// handle answers a group request, waiting for the rebalance where the
// protocol waits (JoinGroup, SyncGroup); nil when ctx ends first.
func (c *coordinator) handle(ctx context.Context, req kmsg.Request) kmsg.Response {
	switch r := req.(type) {
	case *kmsg.FindCoordinatorRequest:
		return c.findCoordinator(r)
	case *kmsg.JoinGroupRequest:
		return c.joinGroup(ctx, r)
	case *kmsg.SyncGroupRequest:
		return c.syncGroup(ctx, r)
	case *kmsg.HeartbeatRequest:
		return c.heartbeat(r)
	case *kmsg.LeaveGroupRequest:
		return c.leaveGroup(r)
	case *kmsg.OffsetCommitRequest:
		return c.offsetCommit(r)
	case *kmsg.OffsetFetchRequest:
		return c.offsetFetch(r)
	}
	return nil
}

// findCoordinator answers that this broker, node 0, coordinates every
// group.
func (c *coordinator) findCoordinator(r *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if r.Version < 4 {
		resp.NodeID, resp.Host, resp.Port = 0, c.host, c.port
		return resp
	}
	for _, key := range r.CoordinatorKeys {
		fc := kmsg.NewFindCoordinatorResponseCoordinator()
		fc.Key, fc.NodeID, fc.Host, fc.Port = key, 0, c.host, c.port
		resp.Coordinators = append(resp.Coordinators, fc)
	}
	return resp
}

// joinGroup adds or rejoins a member and waits for the join phase to end.
func (c *coordinator) joinGroup(ctx context.Context, r *kmsg.JoinGroupRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	fail := func(code int16) kmsg.Response {
		resp.ErrorCode, resp.Generation = code, -1
		return resp
	}
	session := time.Duration(r.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond
	if r.Version == 0 {
		rebalance = session // v0 has no rebalance timeout
	}
	if r.Group == "" || len(r.Protocols) == 0 || session <= 0 || rebalance <= 0 {
		return fail(kerr.InvalidRequest.Code)
	}

	c.mu.Lock()
	g := c.groupFor(r.Group)
	if len(g.members) > 0 && r.ProtocolType != g.protocolType {
		c.mu.Unlock()
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	m := g.members[r.MemberID]
	if r.MemberID != "" && m == nil {
		c.mu.Unlock()
		return fail(kerr.UnknownMemberID.Code)
	}
	if !g.supportsAny(r.Protocols, m) {
		c.mu.Unlock()
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	if m == nil {
		c.nextID++
		m = &member{id: fmt.Sprintf("member-%d", c.nextID)}
		g.members[m.id] = m
	}
	g.protocolType = r.ProtocolType
	m.protocols, m.session, m.rebalance = slices.Clone(r.Protocols), session, rebalance
	m.joined, m.lastSeen = true, time.Now()
	if g.state != groupJoining {
		c.startJoin(g)
	}
	round := g.join
	c.maybeCompleteJoin(g)
	c.mu.Unlock()

	select {
	case <-round.done:
	case <-ctx.Done():
		return nil
	}
	if !slices.ContainsFunc(round.members, func(jm kmsg.JoinGroupResponseMember) bool { return jm.MemberID == m.id }) {
		return fail(kerr.UnknownMemberID.Code) // left, or was dropped, meanwhile
	}
	resp.Generation = round.generation
	resp.ProtocolType = kmsg.StringPtr(r.ProtocolType)
	resp.Protocol = kmsg.StringPtr(round.protocol)
	resp.LeaderID, resp.MemberID = round.leader, m.id
	if m.id == round.leader {
		resp.Members = round.members
	}
	return resp
}

// supportsAny says whether protocols share one with every other member
// of g but m (the member rejoining, if any).
func (g *group) supportsAny(protocols []kmsg.JoinGroupRequestProtocol, m *member) bool {
	for _, p := range protocols {
		all := true
		for _, o := range g.members {
			all = all && (o == m || hasProtocol(o.protocols, p.Name))
		}
		if all {
			return true
		}
	}
	return false
}

func hasProtocol(ps []kmsg.JoinGroupRequestProtocol, name string) bool {
	return slices.ContainsFunc(ps, func(p kmsg.JoinGroupRequestProtocol) bool { return p.Name == name })
}

// abortSync ends a sync phase still waiting for the leader with
// REBALANCE_IN_PROGRESS, and forgets the last one's assignments.
func (g *group) abortSync() {
	if g.state == groupSyncing {
		g.sync.err = kerr.RebalanceInProgress.Code
		close(g.sync.done)
	}
	g.sync = nil
}

// startJoin starts a rebalance: every member must join again within the
// longest rebalance timeout, or is dropped. A sync phase in progress ends
// with REBALANCE_IN_PROGRESS. c.mu must be held.
func (c *coordinator) startJoin(g *group) {
	g.abortSync()
	var timeout time.Duration
	for _, m := range g.members {
		timeout = max(timeout, m.rebalance)
	}
	round := &joinRound{done: make(chan struct{})}
	round.timer = time.AfterFunc(timeout, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if g.join == round {
			c.completeJoin(g)
		}
	})
	g.state, g.join = groupJoining, round
}

// maybeCompleteJoin ends the join phase once every member has joined.
// c.mu must be held.
func (c *coordinator) maybeCompleteJoin(g *group) {
	if g.state != groupJoining {
		return
	}
	for _, m := range g.members {
		if !m.joined {
			return
		}
	}
	c.completeJoin(g)
}

// completeJoin ends the join phase: members that did not join are
// dropped, the generation moves on, the protocol every member supports
// is chosen (the first of the leader's that all list), and the leader
// stays leader if it is still a member. c.mu must be held.
func (c *coordinator) completeJoin(g *group) {
	round := g.join
	round.timer.Stop()
	g.join = nil
	for id, m := range g.members {
		if !m.joined {
			delete(g.members, id)
		}
	}
	if len(g.members) == 0 {
		g.state, g.leader, g.protocol = groupEmpty, "", ""
		close(round.done)
		return
	}
	if g.members[g.leader] == nil {
		g.leader = slices.Min(slices.Collect(maps.Keys(g.members)))
	}
	g.protocol = ""
	for _, p := range g.members[g.leader].protocols {
		if g.supportsAny([]kmsg.JoinGroupRequestProtocol{p}, nil) {
			g.protocol = p.Name
			break
		}
	}
	g.generation++
	now := time.Now()
	for id, m := range g.members {
		m.joined, m.lastSeen = false, now
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = id
		for _, p := range m.protocols {
			if p.Name == g.protocol {
				jm.ProtocolMetadata = p.Metadata
			}
		}
		round.members = append(round.members, jm)
	}
	round.generation, round.protocol, round.leader = g.generation, g.protocol, g.leader
	g.state, g.sync = groupSyncing, &syncRound{done: make(chan struct{})}
	close(round.done)
}

// check is the error a request of member id in generation gen gets from
// g, or 0.
func (g *group) check(id string, gen int32) int16 {
	switch {
	case g.members[id] == nil:
		return kerr.UnknownMemberID.Code
	case gen != g.generation:
		return kerr.IllegalGeneration.Code
	}
	return 0
}

// syncGroup takes the leader's assignments and waits for them.
func (c *coordinator) syncGroup(ctx context.Context, r *kmsg.SyncGroupRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
	c.mu.Lock()
	g := c.lookup(r.Group)
	code := g.check(r.MemberID, r.Generation)
	if code == 0 && g.state == groupJoining {
		code = kerr.RebalanceInProgress.Code
	}
	if code != 0 {
		c.mu.Unlock()
		resp.ErrorCode = code
		return resp
	}
	g.members[r.MemberID].lastSeen = time.Now()
	round := g.sync
	if g.state == groupSyncing && r.MemberID == g.leader {
		round.assignments = map[string][]byte{}
		for _, a := range r.GroupAssignment {
			if g.members[a.MemberID] != nil {
				round.assignments[a.MemberID] = a.MemberAssignment
			}
		}
		g.state = groupStable
		close(round.done)
	}
	protocolType, protocol := g.protocolType, g.protocol
	c.mu.Unlock()

	if round == nil {
		resp.ErrorCode = kerr.RebalanceInProgress.Code
		return resp
	}
	select {
	case <-round.done:
	case <-ctx.Done():
		return nil
	}
	if round.err != 0 {
		resp.ErrorCode = round.err
		return resp
	}
	resp.ProtocolType, resp.Protocol = kmsg.StringPtr(protocolType), kmsg.StringPtr(protocol)
	resp.MemberAssignment = round.assignments[r.MemberID]
	return resp
}

// heartbeat keeps a member's session, and tells it when to rejoin.
func (c *coordinator) heartbeat(r *kmsg.HeartbeatRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.lookup(r.Group)
	if g.state == groupJoining && g.members[r.MemberID] != nil {
		resp.ErrorCode = kerr.RebalanceInProgress.Code
		return resp
	}
	if resp.ErrorCode = g.check(r.MemberID, r.Generation); resp.ErrorCode == 0 {
		g.members[r.MemberID].lastSeen = time.Now()
	}
	return resp
}

// leaveGroup removes members; the rest rebalance.
func (c *coordinator) leaveGroup(r *kmsg.LeaveGroupRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.lookup(r.Group)
	if r.Version < 3 {
		if g.members[r.MemberID] == nil {
			resp.ErrorCode = kerr.UnknownMemberID.Code
			return resp
		}
		c.remove(g, r.MemberID)
		return resp
	}
	for _, lm := range r.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		if g.members[lm.MemberID] == nil {
			rm.ErrorCode = kerr.UnknownMemberID.Code
		} else {
			c.remove(g, lm.MemberID)
		}
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

// remove takes member id out of g and rebalances the rest. c.mu must be
// held.
func (c *coordinator) remove(g *group, id string) {
	delete(g.members, id)
	switch {
	case g.state == groupJoining:
		c.maybeCompleteJoin(g) // it may have been the last one awaited
	case len(g.members) == 0:
		g.abortSync()
		g.state, g.leader, g.protocol = groupEmpty, "", ""
	default:
		c.startJoin(g)
	}
}

// expire removes, every interval until ctx ends, the members of settled
// groups whose session ran out without a heartbeat: a client that went
// away without leaving. Members in a join phase are not expired; the
// phase's own timeout drops those that do not rejoin.
func (c *coordinator) expire(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.mu.Lock()
			for _, g := range c.groups {
				if g.state != groupSyncing && g.state != groupStable {
					continue
				}
				for id, m := range g.members {
					if now.Sub(m.lastSeen) > m.session {
						c.remove(g, id) // the group rebalances: the others are in a join phase now
						break
					}
				}
			}
			c.mu.Unlock()
		}
	}
}
