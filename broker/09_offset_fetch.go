package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch v0-v9: one group before v8, several from v8 (KIP-709).
// Partitions with no committed offset come back as offset -1; null topics
// (v2+) ask for every committed offset of the group. Errors are
// per-partition before v2, top-level (per group from v8) after.
//
// With RequireStable (v7+), a partition whose offset a transaction holds
// uncommitted answers UNSTABLE_OFFSET_COMMIT and the client retries. The
// member epoch (v9) is ignored: classic groups have no member epochs.
//
// With an authorizer, as Kafka's: a group needs DESCRIBE
// (GROUP_AUTHORIZATION_FAILED), a named topic DESCRIBE (its partitions
// get TOPIC_AUTHORIZATION_FAILED), and a request for every committed
// offset shows only the topics the principal may DESCRIBE.
//
// Not here yet: v10 (topics by id).

func init() { register(9, 0, 9, handleOffsetFetch) }

func handleOffsetFetch(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.OffsetFetchRequest)
	if c.b.authz == nil {
		return respond(c.b.groups.OffsetFetch(r))
	}
	if r.Version < 8 {
		return respond(c.offsetFetchOneAuthorized(r))
	}
	// Serve the groups the principal may describe; the others answer
	// GROUP_AUTHORIZATION_FAILED in their place.
	allowed := *r
	allowed.Groups = nil
	var deniedTopics [][]kmsg.OffsetFetchRequestGroupTopic
	for _, g := range r.Groups {
		if !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, g.Group) {
			continue
		}
		var denied []kmsg.OffsetFetchRequestGroupTopic
		if g.Topics != nil {
			keep := make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(g.Topics))
			for _, t := range g.Topics {
				if c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.Topic) {
					keep = append(keep, t)
				} else {
					denied = append(denied, t)
				}
			}
			g.Topics = keep
		}
		allowed.Groups = append(allowed.Groups, g)
		deniedTopics = append(deniedTopics, denied)
	}
	served := c.b.groups.OffsetFetch(&allowed)
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	resp.ThrottleMillis = served.ThrottleMillis
	next := 0
	for _, g := range r.Groups {
		if next >= len(allowed.Groups) || allowed.Groups[next].Group != g.Group || next >= len(served.Groups) {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		rg := served.Groups[next]
		if g.Topics == nil {
			rg.Topics = slices.DeleteFunc(rg.Topics, func(t kmsg.OffsetFetchResponseGroupTopic) bool {
				return !c.allowedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.Topic)
			})
		}
		for _, t := range deniedTopics[next] {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			rg.Topics = append(rg.Topics, rt)
		}
		resp.Groups = append(resp.Groups, rg)
		next++
	}
	return respond(resp)
}

// offsetFetchOneAuthorized serves a v0-v7 OffsetFetch (one group) with
// the authorizer's checks.
func (c *conn) offsetFetchOneAuthorized(r *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	deniedPart := func(t kmsg.OffsetFetchRequestTopic, code int16) kmsg.OffsetFetchResponseTopic {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	if !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, r.Group) {
		resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
		if r.Version >= 2 {
			resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
			return resp
		}
		for _, t := range r.Topics {
			resp.Topics = append(resp.Topics, deniedPart(t, kerr.GroupAuthorizationFailed.Code))
		}
		return resp
	}
	allowed := *r
	var denied []kmsg.OffsetFetchRequestTopic
	if r.Topics != nil {
		allowed.Topics = make([]kmsg.OffsetFetchRequestTopic, 0, len(r.Topics))
		for _, t := range r.Topics {
			if c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.Topic) {
				allowed.Topics = append(allowed.Topics, t)
			} else {
				denied = append(denied, t)
			}
		}
	}
	resp := c.b.groups.OffsetFetch(&allowed)
	if r.Topics == nil {
		resp.Topics = slices.DeleteFunc(resp.Topics, func(t kmsg.OffsetFetchResponseTopic) bool {
			return !c.allowedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.Topic)
		})
	}
	for _, t := range denied {
		resp.Topics = append(resp.Topics, deniedPart(t, kerr.TopicAuthorizationFailed.Code))
	}
	return resp
}
