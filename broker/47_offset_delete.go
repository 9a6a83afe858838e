package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete v0 (KIP-496). An empty group's offsets can all be deleted;
// a consumer group with members keeps the offsets of topics its members
// subscribe to (GROUP_SUBSCRIBED_TO_TOPIC per partition), and a non-consumer
// group with members refuses (NON_EMPTY_GROUP). The response waits until
// the tombstones are durable. With an authorizer the group needs DELETE
// (GROUP_AUTHORIZATION_FAILED) and each topic READ
// (TOPIC_AUTHORIZATION_FAILED on its partitions, the others deleted).

func init() { register(47, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.OffsetDeleteRequest)
	if !c.allowed(kmsg.ACLOperationDelete, kmsg.ACLResourceTypeGroup, r.Group) {
		resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return respond(resp)
	}
	allowed := *r
	allowed.Topics = nil
	var denied []kmsg.OffsetDeleteResponseTopic
	for _, t := range r.Topics {
		if c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, t.Topic) {
			allowed.Topics = append(allowed.Topics, t)
			continue
		}
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, kerr.TopicAuthorizationFailed.Code
			rt.Partitions = append(rt.Partitions, rp)
		}
		denied = append(denied, rt)
	}
	wait := c.b.groups.OffsetDelete(&allowed)
	return func(ctx context.Context) kmsg.Response {
		resp := wait(ctx)
		resp.Topics = append(resp.Topics, denied...)
		return resp
	}, nil
}
