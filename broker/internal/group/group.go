package group

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
)

// State is a classic group's state, as Kafka names them.
type State int8

// The group states. A group starts Empty, goes to PreparingRebalance when
// a member joins, to CompletingRebalance when every member has rejoined
// (or the rebalance timeout removed the others), and to Stable when the
// leader's assignment is stored. Dead groups are gone: deleted, or expired
// with no offsets left.
const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	case Dead:
		return "Dead"
	}
	return fmt.Sprintf("State(%d)", int8(s))
}

type topicPartition struct {
	topic     string
	partition int32
}

// offset is a committed offset.
type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTime  time.Time
}

// group is one classic group. Every field is guarded by its shard's mutex.
type group struct {
	s  *shard
	id string

	state State
	// protocolType is the members' protocol type ("consumer"), or "" for
	// a group that has only ever committed offsets.
	protocolType string
	// protocol is the protocol chosen for the current generation, "" when
	// Empty.
	protocol   string
	generation int32
	// leader is the member that assigns; "" when there are no members.
	// Invariant: leader == "" || members[leader] != nil.
	leader  string
	members map[string]*member
	// static maps instance ids to member ids. Invariant: every value is a
	// key of members whose instance id is the key.
	static map[string]string
	// pending holds member ids handed out with MEMBER_ID_REQUIRED that
	// have not joined yet, with the stop function of their expiry timer.
	pending map[string]func() bool
	// newMemberAdded extends the initial rebalance delay.
	newMemberAdded bool
	// stateTime is when the state last changed (Kafka's
	// currentStateTimestamp); an empty group's offsets expire from it.
	stateTime time.Time
	// joinTimer is the pending rebalance (or initial delay) timeout;
	// joinSeq tells a stale timer from the current one.
	stopJoin func() bool
	joinSeq  uint64
	// inInitialDelay is set while the initial rebalance delay runs; the
	// join does not complete early then.
	inInitialDelay bool

	offsets map[topicPartition]offset
}

// member is one member of a group.
type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol
	assignment       []byte

	// join is set while the member waits in JoinGroup; sync while it
	// waits in SyncGroup. Both are buffered: the group never blocks on
	// them.
	join chan joinResult
	sync chan syncResult

	stopSession func() bool
	sessionSeq  uint64
}

// joinResult is a JoinGroup answer before it is encoded at the request's
// version.
type joinResult struct {
	code           int16
	memberID       string
	generation     int32
	protocolType   string
	protocol       string
	leader         string
	skipAssignment bool
	members        []kmsg.JoinGroupResponseMember
	wait           func(context.Context) error
}

// syncResult is a SyncGroup answer.
type syncResult struct {
	code         int16
	protocolType string
	protocol     string
	assignment   []byte
	wait         func(context.Context) error
}

// REQUIRES: s locked.
func (s *shard) newGroupLocked(id string) *group {
	g := &group{
		s:         s,
		id:        id,
		members:   make(map[string]*member),
		static:    make(map[string]string),
		pending:   make(map[string]func() bool),
		offsets:   make(map[topicPartition]offset),
		stateTime: s.c.clock.Now(),
	}
	s.groups[id] = g
	return g
}

// restoreLocked rebuilds a group from its last stored metadata: Stable
// with its members when it had any, each of whom must heartbeat within
// its session timeout to stay.
//
// REQUIRES: s locked.
func (g *group) restoreLocked(v *kmsg.GroupMetadataValue, now time.Time) {
	g.protocolType = v.ProtocolType
	g.generation = v.Generation
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	if v.Leader != nil {
		g.leader = *v.Leader
	}
	g.stateTime = now
	if v.CurrentStateTimestamp >= 0 {
		g.stateTime = time.UnixMilli(v.CurrentStateTimestamp)
	}
	for _, vm := range v.Members {
		m := &member{
			id:               vm.MemberID,
			instanceID:       vm.InstanceID,
			clientID:         vm.ClientID,
			clientHost:       vm.ClientHost,
			sessionTimeout:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
			rebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
			protocolType:     v.ProtocolType,
			protocols:        []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}},
			assignment:       vm.Assignment,
		}
		if m.rebalanceTimeout <= 0 {
			m.rebalanceTimeout = m.sessionTimeout
		}
		g.members[m.id] = m
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
		g.scheduleSessionLocked(m)
	}
	if g.members[g.leader] == nil {
		g.leader = ""
		for id := range g.members {
			g.leader = id
			break
		}
	}
	if len(g.members) > 0 {
		g.state = Stable
	} else {
		g.state = Empty
	}
}

// REQUIRES: s locked.
func (g *group) stopTimersLocked() {
	if g.stopJoin != nil {
		g.stopJoin()
		g.stopJoin = nil
	}
	g.joinSeq++
	for _, m := range g.members {
		if m.stopSession != nil {
			m.stopSession()
			m.stopSession = nil
		}
	}
	for id, stop := range g.pending {
		stop()
		delete(g.pending, id)
	}
}

// transitionLocked changes state and stamps the time.
//
// REQUIRES: s locked.
func (g *group) transitionLocked(to State) {
	g.state = to
	g.stateTime = g.s.c.clock.Now()
}

// newMemberID makes a member id as Kafka does: the instance id (static
// members) or client id, a dash, and a random UUID.
func newMemberID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// addMemberLocked adds m: the first member sets the protocol type, and
// becomes leader when there is none.
//
// REQUIRES: s locked.
func (g *group) addMemberLocked(m *member) {
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
}

// removeMemberLocked drops a member and its timer and moves leadership to
// another member when it led.
//
// REQUIRES: s locked.
func (g *group) removeMemberLocked(id string) {
	m := g.members[id]
	if m == nil {
		return
	}
	if m.stopSession != nil {
		m.stopSession()
	}
	m.sessionSeq++
	delete(g.members, id)
	if m.instanceID != nil && g.static[*m.instanceID] == id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == id {
		g.leader = ""
		for other := range g.members {
			g.leader = other
			break
		}
	}
}

// scheduleSessionLocked (re)starts a member's session timeout: the
// member is removed unless it heartbeats (or joins, or syncs) before it
// ends. Members waiting in JoinGroup or SyncGroup do not expire; the
// rebalance timeout bounds those.
//
// REQUIRES: s locked.
func (g *group) scheduleSessionLocked(m *member) {
	if m.stopSession != nil {
		m.stopSession()
	}
	m.sessionSeq++
	seq := m.sessionSeq
	s := g.s
	m.stopSession = s.AfterFunc(m.sessionTimeout, func() {
		s.Lock()
		defer s.Unlock()
		if s.groups[g.id] != g || g.members[m.id] != m || m.sessionSeq != seq {
			return
		}
		if m.join != nil || m.sync != nil {
			return
		}
		s.c.log.Info("member session expired", "group", g.id, "member", m.id)
		g.removeMemberAndUpdateLocked(m, "session timeout")
	})
}

// removeMemberAndUpdateLocked removes a member that left or expired and
// moves the group on: a rebalance for a Stable group, the end of the join
// phase when it was the last one awaited.
//
// REQUIRES: s locked.
func (g *group) removeMemberAndUpdateLocked(m *member, reason string) {
	if m.join != nil {
		m.join <- joinResult{code: kerr.UnknownMemberID.Code, generation: -1}
		m.join = nil
	}
	if m.sync != nil {
		m.sync <- syncResult{code: kerr.UnknownMemberID.Code}
		m.sync = nil
	}
	g.removeMemberLocked(m.id)
	switch g.state {
	case Stable, CompletingRebalance:
		g.prepareRebalanceLocked(reason)
	case PreparingRebalance:
		g.tryCompleteJoinLocked()
	}
}

// rebalanceTimeout is the longest rebalance timeout of the members.
//
// REQUIRES: s locked.
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// maybePrepareRebalanceLocked starts a rebalance unless one is under way.
//
// REQUIRES: s locked.
func (g *group) maybePrepareRebalanceLocked(reason string) {
	switch g.state {
	case Stable, CompletingRebalance, Empty:
		g.prepareRebalanceLocked(reason)
	}
}

// prepareRebalanceLocked moves the group to PreparingRebalance: members
// waiting in SyncGroup are told REBALANCE_IN_PROGRESS, and the join phase
// ends when every member has rejoined or the rebalance timeout passes. An
// empty group's first join waits the initial rebalance delay for more
// members, extended while they keep coming, up to the rebalance timeout.
//
// REQUIRES: s locked.
func (g *group) prepareRebalanceLocked(reason string) {
	if g.state == CompletingRebalance {
		g.resetAssignmentsLocked(kerr.RebalanceInProgress.Code)
	}
	g.s.c.log.Debug("preparing rebalance", "group", g.id, "generation", g.generation, "reason", reason)
	from := g.state
	g.transitionLocked(PreparingRebalance)
	timeout := g.rebalanceTimeout()
	if delay := g.s.c.cfg.InitialRebalanceDelay; from == Empty && delay > 0 {
		d := min(delay, timeout)
		g.armInitialDelayLocked(d, timeout-d)
		return
	}
	g.armJoinTimerLocked(timeout)
	g.tryCompleteJoinLocked()
}

// REQUIRES: s locked.
func (g *group) armJoinTimerLocked(d time.Duration) {
	g.stopJoinTimerLocked()
	seq := g.joinSeq
	s := g.s
	g.stopJoin = s.AfterFunc(d, func() {
		s.Lock()
		defer s.Unlock()
		if s.groups[g.id] != g || g.joinSeq != seq || g.state != PreparingRebalance {
			return
		}
		g.completeJoinLocked()
	})
}

// REQUIRES: s locked.
func (g *group) armInitialDelayLocked(d, remaining time.Duration) {
	g.stopJoinTimerLocked()
	g.inInitialDelay = true
	seq := g.joinSeq
	s := g.s
	g.stopJoin = s.AfterFunc(d, func() {
		s.Lock()
		defer s.Unlock()
		if s.groups[g.id] != g || g.joinSeq != seq || g.state != PreparingRebalance {
			return
		}
		if g.newMemberAdded && remaining > 0 {
			g.newMemberAdded = false
			next := min(s.c.cfg.InitialRebalanceDelay, remaining)
			g.armInitialDelayLocked(next, remaining-next)
			return
		}
		g.inInitialDelay = false
		g.completeJoinLocked()
	})
}

// REQUIRES: s locked.
func (g *group) stopJoinTimerLocked() {
	if g.stopJoin != nil {
		g.stopJoin()
		g.stopJoin = nil
	}
	g.joinSeq++
	g.inInitialDelay = false
}

// allJoinedLocked reports whether every member waits in JoinGroup and no
// member id handed out is still to come.
//
// REQUIRES: s locked.
func (g *group) allJoinedLocked() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	return true
}

// REQUIRES: s locked.
func (g *group) tryCompleteJoinLocked() {
	if g.state == PreparingRebalance && !g.inInitialDelay && g.allJoinedLocked() {
		g.completeJoinLocked()
	}
}

// completeJoinLocked ends the join phase: dynamic members that did not
// rejoin are removed, the generation advances, a protocol is chosen, and
// every waiting member gets its JoinGroup answer (the leader with every
// member's metadata). A group left with no members becomes Empty.
//
// REQUIRES: s locked.
func (g *group) completeJoinLocked() {
	g.stopJoinTimerLocked()
	for id, m := range g.members {
		if m.join == nil && m.instanceID == nil {
			g.removeMemberLocked(id)
		}
	}
	if len(g.members) > 0 && !g.electJoinedLeaderLocked() {
		// Only static members that have not rejoined are left: wait
		// for them to rejoin or for their sessions to end.
		g.armJoinTimerLocked(g.rebalanceTimeout())
		return
	}
	g.generation++
	g.newMemberAdded = false
	if len(g.members) == 0 {
		g.protocol = ""
		g.leader = ""
		g.transitionLocked(Empty)
		if _, err := g.storeLocked(); err != nil {
			g.s.c.log.Error("store empty group", "group", g.id, "err", err)
		}
		return
	}
	g.protocol = g.selectProtocolLocked()
	g.transitionLocked(CompletingRebalance)
	all := g.memberListLocked()
	for _, m := range g.members {
		if m.join == nil {
			continue
		}
		r := joinResult{
			memberID:     m.id,
			generation:   g.generation,
			protocolType: g.protocolType,
			protocol:     g.protocol,
			leader:       g.leader,
		}
		if m.id == g.leader {
			r.members = all
		}
		m.join <- r
		m.join = nil
		g.scheduleSessionLocked(m)
	}
}

// electJoinedLeaderLocked keeps the leader if it rejoined, or else makes
// any rejoined member the leader. It reports false when no member
// rejoined.
//
// REQUIRES: s locked.
func (g *group) electJoinedLeaderLocked() bool {
	if l := g.members[g.leader]; l != nil && l.join != nil {
		return true
	}
	ids := make([]string, 0, len(g.members))
	for id, m := range g.members {
		if m.join != nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return false
	}
	slices.Sort(ids)
	g.leader = ids[0]
	return true
}

// selectProtocolLocked picks the protocol every member supports that gets
// the most first-choice votes; ties go to the leader's preference.
//
// REQUIRES: s locked.
func (g *group) selectProtocolLocked() string {
	cands := g.candidateProtocolsLocked()
	votes := make(map[string]int)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if cands[p.Name] {
				votes[p.Name]++
				break
			}
		}
	}
	var order []string
	if l := g.members[g.leader]; l != nil {
		for _, p := range l.protocols {
			order = append(order, p.Name)
		}
	}
	best, bestVotes := "", -1
	for _, name := range order {
		if cands[name] && votes[name] > bestVotes {
			best, bestVotes = name, votes[name]
		}
	}
	return best
}

// candidateProtocolsLocked is the set of protocols every member supports.
//
// REQUIRES: s locked.
func (g *group) candidateProtocolsLocked() map[string]bool {
	count := make(map[string]int)
	for _, m := range g.members {
		seen := make(map[string]bool)
		for _, p := range m.protocols {
			if !seen[p.Name] {
				seen[p.Name] = true
				count[p.Name]++
			}
		}
	}
	out := make(map[string]bool)
	for name, n := range count {
		if n == len(g.members) {
			out[name] = true
		}
	}
	return out
}

// supportsProtocolsLocked reports whether a member with this protocol type
// and these protocols may join.
//
// REQUIRES: s locked.
func (g *group) supportsProtocolsLocked(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	cands := g.candidateProtocolsLocked()
	for _, p := range protocols {
		if cands[p.Name] {
			return true
		}
	}
	return false
}

// memberListLocked is every member's metadata for the chosen protocol, as
// the leader receives it, sorted by member id.
//
// REQUIRES: s locked.
func (g *group) memberListLocked() []kmsg.JoinGroupResponseMember {
	out := make([]kmsg.JoinGroupResponseMember, 0, len(g.members))
	for _, m := range g.members {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = m.instanceID
		jm.ProtocolMetadata = m.metadata(g.protocol)
		out = append(out, jm)
	}
	slices.SortFunc(out, func(a, b kmsg.JoinGroupResponseMember) int {
		switch {
		case a.MemberID < b.MemberID:
			return -1
		case a.MemberID > b.MemberID:
			return 1
		}
		return 0
	})
	return out
}

// metadata is the member's metadata for protocol.
func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether protocols are the member's, in order.
func (m *member) matches(protocols []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(m.protocols, protocols, func(a, b kmsg.JoinGroupRequestProtocol) bool {
		return a.Name == b.Name && string(a.Metadata) == string(b.Metadata)
	})
}

// resetAssignmentsLocked answers every member waiting in SyncGroup with
// code and forgets the assignments of the generation that is ending.
//
// REQUIRES: s locked.
func (g *group) resetAssignmentsLocked(code int16) {
	for _, m := range g.members {
		if m.sync != nil {
			m.sync <- syncResult{code: code}
			m.sync = nil
		}
		m.assignment = nil
	}
}

// storeLocked writes the group's metadata (members and assignments) to
// its partition.
//
// REQUIRES: s locked.
func (g *group) storeLocked() (func(context.Context) error, error) {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = g.stateTime.UnixMilli()
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		m := g.members[id]
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout.Milliseconds())
		vm.SessionTimeoutMillis = int32(m.sessionTimeout.Milliseconds())
		vm.Subscription = m.metadata(g.protocol)
		if vm.Subscription == nil {
			vm.Subscription = []byte{}
		}
		vm.Assignment = m.assignment
		if vm.Assignment == nil {
			vm.Assignment = []byte{}
		}
		v.Members = append(v.Members, vm)
	}
	return g.s.appendLocked([]recordbatch.Record{{Key: groupKey(g.id), Value: v.AppendTo(nil)}})
}
