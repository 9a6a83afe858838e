package main

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Committed offsets, in memory: OffsetCommit v2-v8 and OffsetFetch v1-v8
// (named topics; v8 batches groups). Metadata and leader epochs are not
// kept; no transactions, so RequireStable changes nothing.

// offsetKey is one group's partition.
type offsetKey struct {
	group, topic string
	partition    int32
}

// offsetCommit keeps a member's commits as Kafka accepts them: from a
// member of the current generation while the group is not waiting for
// its assignment (a commit during a join phase is the previous
// generation's, which Kafka takes), or from outside any group
// (generation -1, no member) when the group has no members.
func (c *coordinator) offsetCommit(r *kmsg.OffsetCommitRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.lookup(r.Group)
	var code int16
	switch {
	case r.Group == "":
		code = kerr.InvalidGroupID.Code
	case r.Generation < 0 && r.MemberID == "":
		if len(g.members) > 0 {
			code = kerr.UnknownMemberID.Code
		}
	default:
		if code = g.check(r.MemberID, r.Generation); code == 0 && g.state == groupSyncing {
			code = kerr.RebalanceInProgress.Code
		}
	}
	if code == 0 && g.members[r.MemberID] != nil {
		g.members[r.MemberID].lastSeen = time.Now()
	}
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			if code == 0 {
				c.offsets[offsetKey{r.Group, t.Topic, p.Partition}] = p.Offset
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// offsetFetch answers each asked partition's committed offset, -1 where
// there is none; no topics (null) asks for every partition committed.
func (c *coordinator) offsetFetch(r *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Version < 8 {
		for _, t := range c.committed(r.Group, r.Topics) {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch = p, c.offset(r.Group, t.Topic, p), -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, rg := range r.Groups {
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group = rg.Group
		var asked []kmsg.OffsetFetchRequestTopic
		if rg.Topics != nil {
			asked = make([]kmsg.OffsetFetchRequestTopic, 0, len(rg.Topics))
			for _, t := range rg.Topics {
				asked = append(asked, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
		}
		for _, t := range c.committed(rg.Group, asked) {
			gt := kmsg.NewOffsetFetchResponseGroupTopic()
			gt.Topic = t.Topic
			for _, p := range t.Partitions {
				gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				gp.Partition, gp.Offset, gp.LeaderEpoch = p, c.offset(rg.Group, t.Topic, p), -1
				gt.Partitions = append(gt.Partitions, gp)
			}
			g.Topics = append(g.Topics, gt)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp
}

// committed returns the partitions an OffsetFetch asks about: topics as
// asked, or, when nil, every partition group has an offset for. c.mu
// must be held.
func (c *coordinator) committed(group string, topics []kmsg.OffsetFetchRequestTopic) []kmsg.OffsetFetchRequestTopic {
	if topics != nil {
		return topics
	}
	idx := map[string]int{}
	for k := range c.offsets {
		if k.group != group {
			continue
		}
		i, ok := idx[k.topic]
		if !ok {
			i = len(topics)
			idx[k.topic] = i
			topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: k.topic})
		}
		topics[i].Partitions = append(topics[i].Partitions, k.partition)
	}
	return topics
}

// offset is a partition's committed offset, -1 if none. c.mu must be
// held.
func (c *coordinator) offset(group, topic string, p int32) int64 {
	if o, ok := c.offsets[offsetKey{group, topic, p}]; ok {
		return o
	}
	return -1
}
