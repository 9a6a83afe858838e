package group

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup handles a JoinGroup request at any version. The returned
// function blocks until the group answers (when the join phase ends) or
// ctx ends.
func (c *Coordinator) JoinGroup(req *kmsg.JoinGroupRequest, clientID, clientHost string) func(context.Context) *kmsg.JoinGroupResponse {
	version := req.Version
	encode := func(r joinResult) *kmsg.JoinGroupResponse {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = r.code
		resp.Generation = r.generation
		resp.MemberID = r.memberID
		if r.code != 0 {
			resp.Generation = -1
			return resp
		}
		pt, p := r.protocolType, r.protocol
		resp.ProtocolType = &pt
		resp.Protocol = &p
		resp.LeaderID = r.leader
		resp.SkipAssignment = r.skipAssignment
		resp.Members = r.members
		return resp
	}
	fail := func(code int16, memberID string) func(context.Context) *kmsg.JoinGroupResponse {
		return ready(encode(joinResult{code: code, memberID: memberID}))
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code, req.MemberID)
	}
	s, code := c.lookup(req.Group)
	if code != 0 {
		return fail(code, req.MemberID)
	}
	defer s.Unlock()

	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if version == 0 {
		rebalance = session
	}
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout.Code, req.MemberID)
	}
	g := s.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			return fail(kerr.UnknownMemberID.Code, req.MemberID)
		}
		g = s.newGroupLocked(req.Group)
	}
	if !g.acceptJoiningMemberLocked(req.MemberID) {
		return fail(kerr.GroupMaxSizeReached.Code, req.MemberID)
	}
	if !g.supportsProtocolsLocked(req.ProtocolType, req.Protocols) {
		return fail(kerr.InconsistentGroupProtocol.Code, req.MemberID)
	}
	ch := make(chan joinResult, 1)
	j := joinArgs{
		version:         version,
		memberID:        req.MemberID,
		instanceID:      req.InstanceID,
		clientID:        clientID,
		clientHost:      clientHost,
		session:         session,
		rebalance:       rebalance,
		protocolType:    req.ProtocolType,
		protocols:       req.Protocols,
		requireMemberID: version >= 4,
		reply:           ch,
	}
	if req.MemberID == "" {
		g.joinUnknownLocked(j)
	} else {
		g.joinKnownLocked(j)
	}
	wait := waitFor(ch, func() joinResult { return joinResult{code: kerr.CoordinatorNotAvailable.Code} })
	return func(ctx context.Context) *kmsg.JoinGroupResponse {
		r := wait(ctx)
		if r.code == 0 && r.wait != nil {
			r.code = durable(ctx, r.wait)
		}
		return encode(r)
	}
}

type joinArgs struct {
	version         int16
	memberID        string
	instanceID      *string
	clientID        string
	clientHost      string
	session         time.Duration
	rebalance       time.Duration
	protocolType    string
	protocols       []kmsg.JoinGroupRequestProtocol
	requireMemberID bool
	reply           chan joinResult
}

// acceptJoiningMemberLocked applies group.max.size to a joining member.
//
// REQUIRES: s locked.
func (g *group) acceptJoiningMemberLocked(memberID string) bool {
	max := g.s.c.cfg.MaxSize
	m := g.members[memberID]
	switch g.state {
	case PreparingRebalance:
		if m != nil && m.join != nil {
			return true
		}
		waiting := 0
		for _, m := range g.members {
			if m.join != nil {
				waiting++
			}
		}
		return waiting < max
	case CompletingRebalance, Stable:
		return m != nil || len(g.members) < max
	}
	return true
}

// joinUnknownLocked admits a member that has no member id yet.
//
// REQUIRES: s locked.
func (g *group) joinUnknownLocked(j joinArgs) {
	prefix := j.clientID
	if j.instanceID != nil {
		prefix = *j.instanceID
	}
	id := newMemberID(prefix)
	if j.instanceID != nil {
		if old, ok := g.static[*j.instanceID]; ok {
			g.replaceStaticMemberLocked(old, id, j)
			return
		}
	} else if j.requireMemberID {
		// KIP-394: hand out the id and have the client join again
		// with it, so a client that loses this answer does not leave
		// an unknown member behind.
		s := g.s
		g.pending[id] = s.AfterFunc(j.session, func() {
			s.Lock()
			defer s.Unlock()
			if s.groups[g.id] != g {
				return
			}
			if _, ok := g.pending[id]; ok {
				delete(g.pending, id)
				g.tryCompleteJoinLocked()
			}
		})
		j.reply <- joinResult{code: kerr.MemberIDRequired.Code, memberID: id}
		return
	}
	g.addMemberAndRebalanceLocked(id, j)
}

// joinKnownLocked handles a JoinGroup from a member with an id.
//
// REQUIRES: s locked.
func (g *group) joinKnownLocked(j joinArgs) {
	if stop, ok := g.pending[j.memberID]; ok {
		stop()
		delete(g.pending, j.memberID)
		g.addMemberAndRebalanceLocked(j.memberID, j)
		return
	}
	if code := g.validateMemberLocked(j.memberID, j.instanceID); code != 0 {
		j.reply <- joinResult{code: code, memberID: j.memberID}
		return
	}
	m := g.members[j.memberID]
	switch g.state {
	case PreparingRebalance:
		g.updateMemberAndRebalanceLocked(m, j)
	case CompletingRebalance:
		if !m.matches(j.protocols) {
			g.updateMemberAndRebalanceLocked(m, j)
			return
		}
		// The member lost its JoinGroup answer: send it again.
		r := g.currentJoinResultLocked(m)
		if m.id == g.leader {
			r.members = g.memberListLocked()
		}
		g.scheduleSessionLocked(m)
		j.reply <- r
	case Stable:
		if m.id == g.leader || !m.matches(j.protocols) {
			// The leader rejoins to force a rebalance (its
			// subscription or the topics changed); so does a member
			// whose metadata changed.
			g.updateMemberAndRebalanceLocked(m, j)
			return
		}
		g.scheduleSessionLocked(m)
		j.reply <- g.currentJoinResultLocked(m)
	default:
		j.reply <- joinResult{code: kerr.UnknownMemberID.Code, memberID: j.memberID}
	}
}

// REQUIRES: s locked.
func (g *group) currentJoinResultLocked(m *member) joinResult {
	return joinResult{
		memberID:     m.id,
		generation:   g.generation,
		protocolType: g.protocolType,
		protocol:     g.protocol,
		leader:       g.leader,
	}
}

// validateMemberLocked checks a request's member id and instance id
// against the group.
//
// REQUIRES: s locked.
func (g *group) validateMemberLocked(memberID string, instanceID *string) int16 {
	if instanceID != nil {
		if cur, ok := g.static[*instanceID]; ok && cur != memberID {
			return kerr.FencedInstanceID.Code
		}
	}
	if g.members[memberID] == nil {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// REQUIRES: s locked.
func (g *group) addMemberAndRebalanceLocked(id string, j joinArgs) {
	m := &member{
		id:               id,
		instanceID:       j.instanceID,
		clientID:         j.clientID,
		clientHost:       j.clientHost,
		sessionTimeout:   j.session,
		rebalanceTimeout: j.rebalance,
		protocolType:     j.protocolType,
		protocols:        j.protocols,
		join:             j.reply,
	}
	g.addMemberLocked(m)
	if g.state == PreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	g.scheduleSessionLocked(m)
	g.maybePrepareRebalanceLocked("member " + id + " joined")
	g.tryCompleteJoinLocked()
}

// REQUIRES: s locked.
func (g *group) updateMemberAndRebalanceLocked(m *member, j joinArgs) {
	g.updateMemberLocked(m, j)
	m.join = j.reply
	g.maybePrepareRebalanceLocked("member " + m.id + " rejoined")
	g.tryCompleteJoinLocked()
}

// REQUIRES: s locked.
func (g *group) updateMemberLocked(m *member, j joinArgs) {
	m.protocols = j.protocols
	m.sessionTimeout = j.session
	m.rebalanceTimeout = j.rebalance
	m.clientID = j.clientID
	m.clientHost = j.clientHost
}

// replaceStaticMemberLocked gives a restarted static member a new member
// id in place of its old one (KIP-345). In a Stable group whose protocol
// would not change, that is all: the member gets its old assignment back
// and nobody rebalances.
//
// REQUIRES: s locked.
func (g *group) replaceStaticMemberLocked(oldID, newID string, j joinArgs) {
	m := g.members[oldID]
	if m.join != nil {
		m.join <- joinResult{code: kerr.FencedInstanceID.Code, memberID: oldID}
		m.join = nil
	}
	if m.sync != nil {
		m.sync <- syncResult{code: kerr.FencedInstanceID.Code}
		m.sync = nil
	}
	oldLeader := g.leader
	wasLeader := oldLeader == oldID
	delete(g.members, oldID)
	m.id = newID
	g.members[newID] = m
	g.static[*j.instanceID] = newID
	if wasLeader {
		g.leader = newID
	}
	g.updateMemberLocked(m, j)
	g.scheduleSessionLocked(m)

	switch g.state {
	case Stable:
		if g.selectProtocolLocked() != g.protocol {
			m.join = j.reply
			g.prepareRebalanceLocked("static member " + newID + " rejoined with other protocols")
			return
		}
		wait, err := g.storeLocked()
		if err != nil {
			j.reply <- joinResult{code: kerr.CoordinatorNotAvailable.Code}
			return
		}
		r := g.currentJoinResultLocked(m)
		r.wait = wait
		if wasLeader && j.version >= 9 {
			// KIP-814: the leader learns it leads, and must not
			// assign: the group keeps its assignment.
			r.skipAssignment = true
			r.members = g.memberListLocked()
		} else {
			// Before KIP-814 the restarted leader is told the old
			// leader id, so it does not assign for a Stable group
			// that would ignore it.
			r.leader = oldLeader
		}
		j.reply <- r
	case CompletingRebalance:
		// The leader may be assigning to the old member id: rebalance
		// so the assignment names the new one.
		m.join = j.reply
		g.prepareRebalanceLocked("static member " + newID + " replaced " + oldID)
	case PreparingRebalance:
		m.join = j.reply
		g.tryCompleteJoinLocked()
	}
}

// SyncGroup handles a SyncGroup request. The returned function blocks
// until the leader's assignment is stored or ctx ends.
func (c *Coordinator) SyncGroup(req *kmsg.SyncGroupRequest) func(context.Context) *kmsg.SyncGroupResponse {
	encode := func(r syncResult) *kmsg.SyncGroupResponse {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = r.code
		if r.code == 0 {
			pt, p := r.protocolType, r.protocol
			resp.ProtocolType = &pt
			resp.Protocol = &p
			resp.MemberAssignment = r.assignment
		}
		if resp.MemberAssignment == nil {
			resp.MemberAssignment = []byte{}
		}
		return resp
	}
	fail := func(code int16) func(context.Context) *kmsg.SyncGroupResponse {
		return ready(encode(syncResult{code: code}))
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	s, code := c.lookup(req.Group)
	if code != 0 {
		return fail(code)
	}
	defer s.Unlock()
	g := s.groups[req.Group]
	if g == nil {
		return fail(kerr.UnknownMemberID.Code)
	}
	if code := g.validateMemberLocked(req.MemberID, req.InstanceID); code != 0 {
		return fail(code)
	}
	if req.Generation != g.generation {
		return fail(kerr.IllegalGeneration.Code)
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	m := g.members[req.MemberID]
	switch g.state {
	case Empty, Dead:
		return fail(kerr.UnknownMemberID.Code)
	case PreparingRebalance:
		return fail(kerr.RebalanceInProgress.Code)
	case Stable:
		g.scheduleSessionLocked(m)
		return ready(encode(syncResult{protocolType: g.protocolType, protocol: g.protocol, assignment: m.assignment}))
	}
	// CompletingRebalance: wait for the leader's assignment.
	ch := make(chan syncResult, 1)
	if m.sync != nil {
		m.sync <- syncResult{code: kerr.RebalanceInProgress.Code}
	}
	m.sync = ch
	g.scheduleSessionLocked(m)
	if m.id == g.leader {
		g.completeSyncLocked(req.GroupAssignment)
	}
	wait := waitFor(ch, func() syncResult { return syncResult{code: kerr.CoordinatorNotAvailable.Code} })
	return func(ctx context.Context) *kmsg.SyncGroupResponse {
		r := wait(ctx)
		if r.code == 0 && r.wait != nil {
			r.code = durable(ctx, r.wait)
		}
		return encode(r)
	}
}

// completeSyncLocked stores the leader's assignment, makes the group
// Stable and answers every member waiting in SyncGroup. Members the leader
// left out get an empty assignment.
//
// REQUIRES: s locked.
func (g *group) completeSyncLocked(plan []kmsg.SyncGroupRequestGroupAssignment) {
	assign := make(map[string][]byte, len(plan))
	for _, a := range plan {
		assign[a.MemberID] = a.MemberAssignment
	}
	for id, m := range g.members {
		m.assignment = assign[id]
		if m.assignment == nil {
			m.assignment = []byte{}
		}
	}
	wait, err := g.storeLocked()
	if err != nil {
		g.resetAssignmentsLocked(kerr.CoordinatorNotAvailable.Code)
		g.prepareRebalanceLocked("storing the assignment failed")
		return
	}
	g.transitionLocked(Stable)
	for _, m := range g.members {
		if m.sync != nil {
			m.sync <- syncResult{protocolType: g.protocolType, protocol: g.protocol, assignment: m.assignment, wait: wait}
			m.sync = nil
		}
	}
}

// Heartbeat handles a Heartbeat request.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = c.heartbeat(req)
	return resp
}

func (c *Coordinator) heartbeat(req *kmsg.HeartbeatRequest) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	s, code := c.lookup(req.Group)
	if code != 0 {
		return code
	}
	defer s.Unlock()
	g := s.groups[req.Group]
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	if code := g.validateMemberLocked(req.MemberID, req.InstanceID); code != 0 {
		return code
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	m := g.members[req.MemberID]
	switch g.state {
	case PreparingRebalance:
		g.scheduleSessionLocked(m)
		return kerr.RebalanceInProgress.Code
	case CompletingRebalance, Stable:
		// Members may heartbeat between their JoinGroup and SyncGroup.
		g.scheduleSessionLocked(m)
		return 0
	}
	return kerr.UnknownMemberID.Code
}

// LeaveGroup handles a LeaveGroup request: one member by id before v3, a
// batch of members by id or instance id from v3.
func (c *Coordinator) LeaveGroup(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	codes, top := c.leave(req.Group, leaving)
	resp.ErrorCode = top
	if req.Version < 3 {
		if top == 0 && len(codes) == 1 {
			resp.ErrorCode = codes[0]
		}
		return resp
	}
	if top != 0 {
		return resp
	}
	for i, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = lm.MemberID
		rm.InstanceID = lm.InstanceID
		rm.ErrorCode = codes[i]
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

func (c *Coordinator) leave(groupID string, leaving []kmsg.LeaveGroupRequestMember) ([]int16, int16) {
	if groupID == "" {
		return nil, kerr.InvalidGroupID.Code
	}
	s, code := c.lookup(groupID)
	if code != 0 {
		return nil, code
	}
	defer s.Unlock()
	codes := make([]int16, len(leaving))
	g := s.groups[groupID]
	if g == nil {
		for i := range codes {
			codes[i] = kerr.UnknownMemberID.Code
		}
		return codes, 0
	}
	for i, lm := range leaving {
		codes[i] = g.leaveLocked(lm.MemberID, lm.InstanceID)
	}
	return codes, 0
}

// leaveLocked removes one member: by member id, or by instance id alone
// (an admin removing a static member).
//
// REQUIRES: s locked.
func (g *group) leaveLocked(memberID string, instanceID *string) int16 {
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case memberID != "" && cur != memberID:
			return kerr.FencedInstanceID.Code
		}
		memberID = cur
	}
	if stop, ok := g.pending[memberID]; ok {
		stop()
		delete(g.pending, memberID)
		g.tryCompleteJoinLocked()
		return 0
	}
	m := g.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	g.removeMemberAndUpdateLocked(m, "member "+memberID+" left")
	return 0
}
