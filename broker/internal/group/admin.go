package group

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
)

// Partitions is the partition count of __consumer_offsets the coordinator
// places groups by.
func (c *Coordinator) Partitions() int32 { return c.cfg.Partitions }

// DescribeGroups handles a DescribeGroups request. A group that does not
// exist is described as Dead (v6+: with GROUP_ID_NOT_FOUND, KIP-1043).
// Member metadata and assignments are given only for Stable groups, as
// Kafka gives them.
func (c *Coordinator) DescribeGroups(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		resp.Groups = append(resp.Groups, c.describe(req.Version, id))
	}
	return resp
}

func (c *Coordinator) describe(version int16, id string) kmsg.DescribeGroupsResponseGroup {
	dg := kmsg.NewDescribeGroupsResponseGroup()
	dg.Group = id
	if id == "" {
		dg.ErrorCode = kerr.InvalidGroupID.Code
		return dg
	}
	s, code := c.lookup(id)
	if code != 0 {
		dg.ErrorCode = code
		return dg
	}
	defer s.Unlock()
	g := s.groups[id]
	if g == nil {
		dg.State = Dead.String()
		if version >= 6 {
			dg.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "group " + id + " not found"
			dg.ErrorMessage = &msg
		}
		return dg
	}
	dg.State = g.state.String()
	dg.ProtocolType = g.protocolType
	stable := g.state == Stable
	if stable {
		dg.Protocol = g.protocol
	}
	ids := make([]string, 0, len(g.members))
	for mid := range g.members {
		ids = append(ids, mid)
	}
	slices.Sort(ids)
	for _, mid := range ids {
		m := g.members[mid]
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.ProtocolMetadata = []byte{}
		dm.MemberAssignment = []byte{}
		if stable {
			if md := m.metadata(g.protocol); md != nil {
				dm.ProtocolMetadata = md
			}
			if m.assignment != nil {
				dm.MemberAssignment = m.assignment
			}
		}
		dg.Members = append(dg.Members, dm)
	}
	return dg
}

// ListGroups handles a ListGroups request: every group this broker
// coordinates, filtered by state (v4+) and type (v5+; every group here is
// "classic"). While a partition loads, the answer carries
// COORDINATOR_LOAD_IN_PROGRESS with the groups already loaded.
func (c *Coordinator) ListGroups(req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	if len(req.TypesFilter) > 0 && !slices.ContainsFunc(req.TypesFilter, func(t string) bool { return strings.EqualFold(t, "classic") }) {
		return resp
	}
	for _, s := range c.shardList() {
		s.Lock()
		if !s.ServingLocked() {
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		}
		for id, g := range s.groups {
			if !isState(req.StatesFilter, g.state) {
				continue
			}
			lg := kmsg.NewListGroupsResponseGroup()
			lg.Group = id
			lg.ProtocolType = g.protocolType
			lg.GroupState = g.state.String()
			lg.GroupType = "classic"
			resp.Groups = append(resp.Groups, lg)
		}
		s.Unlock()
	}
	slices.SortFunc(resp.Groups, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
	return resp
}

// DeleteGroups handles a DeleteGroups request: an empty group is deleted
// with its offsets (tombstones for each, then for the group); a group with
// members gets NON_EMPTY_GROUP. The returned function waits until the
// tombstones are durable.
func (c *Coordinator) DeleteGroups(req *kmsg.DeleteGroupsRequest) func(context.Context) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	waits := make([]func(context.Context) error, len(req.Groups))
	for i, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		rg.ErrorCode, waits[i] = c.deleteGroup(id)
		resp.Groups = append(resp.Groups, rg)
	}
	return func(ctx context.Context) *kmsg.DeleteGroupsResponse {
		for i, w := range waits {
			if resp.Groups[i].ErrorCode == 0 {
				resp.Groups[i].ErrorCode = durable(ctx, w)
			}
		}
		return resp
	}
}

func (c *Coordinator) deleteGroup(id string) (int16, func(context.Context) error) {
	if id == "" {
		return kerr.InvalidGroupID.Code, nil
	}
	s, code := c.lookup(id)
	if code != 0 {
		return code, nil
	}
	defer s.Unlock()
	g := s.groups[id]
	switch {
	case g == nil || g.state == Dead:
		return kerr.GroupIDNotFound.Code, nil
	case g.state != Empty || len(g.pending) > 0:
		return kerr.NonEmptyGroup.Code, nil
	}
	recs := make([]recordbatch.Record, 0, len(g.offsets)+1)
	for tp := range g.offsets {
		recs = append(recs, recordbatch.Record{Key: offsetKey(id, tp.topic, tp.partition)})
	}
	recs = append(recs, recordbatch.Record{Key: groupKey(id)})
	wait, err := s.appendLocked(recs)
	if err != nil {
		return kerr.CoordinatorNotAvailable.Code, nil
	}
	g.state = Dead
	g.stopTimersLocked()
	delete(s.groups, id)
	return 0, wait
}

// Stats is a snapshot of one group, for metrics.
type Stats struct {
	Group   string
	State   State
	Members int
	// Offsets are the committed offsets by topic and partition.
	Offsets map[string]map[int32]int64
}

// Stats returns a snapshot of every loaded group.
func (c *Coordinator) Stats() []Stats {
	var out []Stats
	for _, s := range c.shardList() {
		s.Lock()
		for id, g := range s.groups {
			st := Stats{Group: id, State: g.state, Members: len(g.members), Offsets: make(map[string]map[int32]int64)}
			for tp, o := range g.offsets {
				if st.Offsets[tp.topic] == nil {
					st.Offsets[tp.topic] = make(map[int32]int64)
				}
				st.Offsets[tp.topic][tp.partition] = o.offset
			}
			out = append(out, st)
		}
		s.Unlock()
	}
	slices.SortFunc(out, func(a, b Stats) int { return strings.Compare(a.Group, b.Group) })
	return out
}
