package group

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
)

// OffsetCommit handles an OffsetCommit request. A generation below zero
// from a group with no members is a simple commit (the group is only
// storing offsets); otherwise the member and generation must be current.
// The returned function waits until the commit is durable.
func (c *Coordinator) OffsetCommit(req *kmsg.OffsetCommitRequest) func(context.Context) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(req.Topics))
	var parts []partitionCommit
	for ti, rt := range req.Topics {
		st := &resp.Topics[ti]
		st.Default()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		for pi, rp := range rt.Partitions {
			sp := &st.Partitions[pi]
			sp.Default()
			sp.Partition = rp.Partition
			epoch := int32(-1) // leader epochs came with v6
			if req.Version >= 6 {
				epoch = rp.LeaderEpoch
			}
			parts = append(parts, partitionCommit{rt.Topic, rp.Partition, rp.Offset, epoch, rp.Metadata, &sp.ErrorCode})
		}
	}
	done := c.commitOffsets(offsetCommit{
		group: req.Group,
		parts: parts,
		admit: func(s *shard, g *group) (*group, int16) {
			if g == nil {
				if req.Generation >= 0 {
					return nil, kerr.IllegalGeneration.Code
				}
				g = s.newGroupLocked(req.Group)
			}
			return g, g.validateCommitLocked(req.Generation, req.MemberID, req.InstanceID)
		},
		write: (*shard).appendLocked,
		apply: func(_ *shard, g *group, tp topicPartition, o offset) { g.offsets[tp] = o },
	})
	return func(ctx context.Context) *kmsg.OffsetCommitResponse {
		done(ctx)
		return resp
	}
}

// offsetCommit is what an OffsetCommit and a TxnOffsetCommit have in
// common: a group, offsets per partition, and the steps in which they
// differ. admit, write and apply run with the group's shard locked.
type offsetCommit struct {
	group string
	parts []partitionCommit
	// admit checks who commits to group g (nil if there is none yet),
	// returning the group to commit to or an error for the whole request.
	admit func(s *shard, g *group) (*group, int16)
	// write appends the offset records (none if every partition failed);
	// the function it returns waits until they are durable (nil: nothing
	// to wait for).
	write func(s *shard, recs []recordbatch.Record) (func(context.Context) error, error)
	// apply makes one written offset take effect.
	apply func(s *shard, g *group, tp topicPartition, o offset)
}

// partitionCommit is one partition's offset in an offsetCommit.
type partitionCommit struct {
	topic       string
	partition   int32
	offset      int64
	leaderEpoch int32 // -1: the request's version has none
	metadata    *string
	code        *int16 // the partition's error code in the response
}

// commitOffsets runs oc: it checks the group and each partition, writes
// the offsets and applies them. It sets the error codes of the partitions
// that fail at once; the returned function waits until the write is
// durable and sets the others'.
func (c *Coordinator) commitOffsets(oc offsetCommit) func(context.Context) {
	setAll := func(code int16) {
		for _, p := range oc.parts {
			if *p.code == 0 {
				*p.code = code
			}
		}
	}
	fail := func(code int16) func(context.Context) {
		setAll(code)
		return func(context.Context) {}
	}
	if oc.group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	s, code := c.lookup(oc.group)
	if code != 0 {
		return fail(code)
	}
	defer s.Unlock()
	g, code := oc.admit(s, s.groups[oc.group])
	if code != 0 {
		return fail(code)
	}

	commitTime := c.clock.Now()
	var recs []recordbatch.Record
	var applied []func()
	for _, p := range oc.parts {
		switch {
		case p.metadata != nil && len(*p.metadata) > c.cfg.MaxMetadataBytes:
			*p.code = kerr.OffsetMetadataTooLarge.Code
			continue
		case !c.cfg.PartitionExists(p.topic, p.partition):
			*p.code = kerr.UnknownTopicOrPartition.Code
			continue
		}
		o := offset{offset: p.offset, leaderEpoch: p.leaderEpoch, commitTime: commitTime}
		if p.metadata != nil {
			o.metadata = *p.metadata
		}
		tp := topicPartition{p.topic, p.partition}
		recs = append(recs, recordbatch.Record{Key: offsetKey(g.id, tp.topic, tp.partition), Value: offsetValue(o)})
		applied = append(applied, func() { oc.apply(s, g, tp, o) })
	}
	wait, err := oc.write(s, recs)
	if err != nil {
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	for _, f := range applied {
		f()
	}
	return func(ctx context.Context) { setAll(durable(ctx, wait)) }
}

// validateCommitLocked checks who may commit offsets for the group now.
//
// REQUIRES: s locked.
func (g *group) validateCommitLocked(generation int32, memberID string, instanceID *string) int16 {
	if instanceID != nil {
		if cur, ok := g.static[*instanceID]; ok && cur != memberID {
			return kerr.FencedInstanceID.Code
		}
	}
	if generation < 0 && g.state == Empty {
		return 0
	}
	m := g.members[memberID]
	switch {
	case g.state == Dead:
		return kerr.CoordinatorNotAvailable.Code
	case m == nil:
		return kerr.UnknownMemberID.Code
	case generation != g.generation:
		return kerr.IllegalGeneration.Code
	case g.state == CompletingRebalance:
		// The member has its JoinGroup answer but not its assignment;
		// it should not be committing.
		return kerr.RebalanceInProgress.Code
	}
	// Stable, or PreparingRebalance: a member may commit what it
	// consumed before rejoining.
	g.scheduleSessionLocked(m)
	return 0
}

// OffsetFetch handles an OffsetFetch request: one group before v8, many
// from v8. Partitions with no committed offset return offset -1. Topics
// nil (v2+) asks for every committed offset of the group. With
// RequireStable (v7+), a partition with a transactional offset not yet
// committed or aborted answers UNSTABLE_OFFSET_COMMIT, and the client
// retries.
func (c *Coordinator) OffsetFetch(req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			var want map[string][]int32
			if rg.Topics != nil {
				want = make(map[string][]int32)
				for _, rt := range rg.Topics {
					want[rt.Topic] = append(want[rt.Topic], rt.Partitions...)
				}
			}
			code, got := c.fetchOffsets(rg.Group, want, req.RequireStable)
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group = rg.Group
			sg.ErrorCode = code
			for _, ft := range got {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic = ft.topic
				for _, fp := range ft.partitions {
					sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = fp.partition, fp.offset, fp.leaderEpoch, fp.metadata, fp.code
					st.Partitions = append(st.Partitions, sp)
				}
				sg.Topics = append(sg.Topics, st)
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp
	}
	var want map[string][]int32
	if req.Topics != nil || req.Version < 2 {
		want = make(map[string][]int32)
		for _, rt := range req.Topics {
			want[rt.Topic] = append(want[rt.Topic], rt.Partitions...)
		}
	}
	code, got := c.fetchOffsets(req.Group, want, req.Version >= 7 && req.RequireStable)
	if req.Version >= 2 {
		resp.ErrorCode = code
	}
	for _, ft := range got {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = ft.topic
		for _, fp := range ft.partitions {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = fp.partition, fp.offset, fp.leaderEpoch, fp.metadata, fp.code
			if req.Version < 2 && code != 0 {
				sp.ErrorCode = code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

type fetchedTopic struct {
	topic      string
	partitions []fetchedPartition
}

type fetchedPartition struct {
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    *string
	code        int16
}

// fetchOffsets returns the committed offsets of the partitions in want,
// or of every partition with one when want is nil. On a group-level error
// the requested partitions come back with offset -1.
func (c *Coordinator) fetchOffsets(groupID string, want map[string][]int32, requireStable bool) (int16, []fetchedTopic) {
	var offs map[topicPartition]offset
	var unstable map[topicPartition]bool
	code := int16(0)
	if groupID == "" {
		code = kerr.InvalidGroupID.Code
	} else if s, lc := c.lookup(groupID); lc != 0 {
		code = lc
	} else {
		if g := s.groups[groupID]; g != nil {
			offs = make(map[topicPartition]offset, len(g.offsets))
			for tp, o := range g.offsets {
				offs[tp] = o
			}
		}
		if requireStable {
			for _, p := range s.pending {
				for tp := range p[groupID] {
					if unstable == nil {
						unstable = make(map[topicPartition]bool)
					}
					unstable[tp] = true
				}
			}
		}
		s.Unlock()
	}
	if want == nil {
		want = make(map[string][]int32)
		for tp := range offs {
			want[tp.topic] = append(want[tp.topic], tp.partition)
		}
	}
	topics := make([]string, 0, len(want))
	for t := range want {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	out := make([]fetchedTopic, 0, len(topics))
	for _, t := range topics {
		ft := fetchedTopic{topic: t}
		parts := slices.Clone(want[t])
		slices.Sort(parts)
		for _, p := range parts {
			fp := fetchedPartition{partition: p, offset: -1, leaderEpoch: -1}
			if unstable[topicPartition{t, p}] {
				fp.code = kerr.UnstableOffsetCommit.Code
				md := ""
				fp.metadata = &md
			} else if o, ok := offs[topicPartition{t, p}]; ok {
				md := o.metadata
				fp.offset, fp.leaderEpoch, fp.metadata = o.offset, o.leaderEpoch, &md
			} else {
				md := ""
				fp.metadata = &md
			}
			ft.partitions = append(ft.partitions, fp)
		}
		out = append(out, ft)
	}
	return code, out
}

// OffsetDelete handles an OffsetDelete request: an empty group's offsets
// may all go; a group with members keeps those of topics its members
// subscribe to (GROUP_SUBSCRIBED_TO_TOPIC). The returned function waits
// until the tombstones are durable.
func (c *Coordinator) OffsetDelete(req *kmsg.OffsetDeleteRequest) func(context.Context) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	fail := func(code int16) func(context.Context) *kmsg.OffsetDeleteResponse {
		resp.ErrorCode = code
		return ready(resp)
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
	if g == nil || g.state == Dead {
		return fail(kerr.GroupIDNotFound.Code)
	}
	var subscribed func(string) bool
	if g.state != Empty {
		if g.protocolType != "consumer" {
			return fail(kerr.NonEmptyGroup.Code)
		}
		subscribed = g.subscribedTopicsLocked()
	}
	var recs []recordbatch.Record
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			tp := topicPartition{rt.Topic, rp.Partition}
			if subscribed != nil && subscribed(rt.Topic) {
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else if _, ok := g.offsets[tp]; ok {
				delete(g.offsets, tp)
				recs = append(recs, recordbatch.Record{Key: offsetKey(g.id, tp.topic, tp.partition)})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	wait, err := s.appendLocked(recs)
	if err != nil {
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	return func(ctx context.Context) *kmsg.OffsetDeleteResponse {
		resp.ErrorCode = durable(ctx, wait)
		return resp
	}
}

// subscribedTopicsLocked reports whether a topic is among those the
// members subscribe to, read from their consumer protocol metadata. A
// member whose metadata does not parse counts as subscribed to every
// topic.
//
// REQUIRES: s locked.
func (g *group) subscribedTopicsLocked() func(string) bool {
	topics := make(map[string]bool)
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadata(g.protocol)); err != nil {
			return func(string) bool { return true }
		}
		for _, t := range md.Topics {
			topics[t] = true
		}
	}
	return func(t string) bool { return topics[t] }
}

// ExpireOffsets removes the offsets of groups that have had no members
// for the retention period (and, for groups that only ever committed,
// offsets not committed again within it), writing tombstones. A group
// left empty with no offsets is deleted. It runs every
// OffsetsRetentionCheckInterval by itself; tests call it directly.
func (c *Coordinator) ExpireOffsets() {
	for _, s := range c.shardList() {
		s.Lock()
		if s.ServingLocked() {
			s.expireLocked()
		}
		s.Unlock()
	}
}

// REQUIRES: s locked.
func (s *shard) expireLocked() {
	now := s.c.clock.Now()
	retention := s.c.cfg.OffsetsRetention
	var recs []recordbatch.Record
	removed := 0
	for id, g := range s.groups {
		if g.state != Empty || len(g.pending) > 0 {
			continue
		}
		for tp, o := range g.offsets {
			base := o.commitTime
			if g.protocolType != "" {
				base = g.stateTime
			}
			if now.Sub(base) >= retention {
				delete(g.offsets, tp)
				recs = append(recs, recordbatch.Record{Key: offsetKey(id, tp.topic, tp.partition)})
				removed++
			}
		}
		if len(g.offsets) == 0 {
			g.state = Dead
			g.stopTimersLocked()
			delete(s.groups, id)
			recs = append(recs, recordbatch.Record{Key: groupKey(id)})
		}
	}
	if _, err := s.appendLocked(recs); err != nil {
		return
	}
	if removed > 0 {
		s.c.log.Info("expired offsets", "partition", s.Index(), "offsets", removed)
	}
}

// isState reports whether name is a state in filter, matched as Kafka
// does, ignoring case.
func isState(filter []string, st State) bool {
	if len(filter) == 0 {
		return true
	}
	for _, f := range filter {
		if strings.EqualFold(f, st.String()) {
			return true
		}
	}
	return false
}
