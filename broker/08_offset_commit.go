package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit v0-v9. A member commits with its generation and member id;
// a generation of -1 (and v0, which has none) from a group with no members
// is a simple commit. The response waits until the commit is durable in
// __consumer_offsets, as an acks=all produce does. The per-partition
// timestamp (v1) and the retention time (v2-v4) are ignored: offsets
// expire by offsets.retention.minutes once the group is empty, as in
// Kafka since 2.1.
//
// With an authorizer the group needs READ (GROUP_AUTHORIZATION_FAILED on
// every partition) and each topic READ (TOPIC_AUTHORIZATION_FAILED on its
// partitions; the others are committed), as Kafka's.
//
// Not here yet: v10 (topics by id) and transactional commits
// (TxnOffsetCommit).

func init() { register(8, 0, 9, handleOffsetCommit) }

func handleOffsetCommit(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.OffsetCommitRequest)
	groupDenied := !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, r.Group)
	allowed := *r
	allowed.Topics = nil
	var denied []kmsg.OffsetCommitResponseTopic
	for _, t := range r.Topics {
		code := kerr.GroupAuthorizationFailed.Code
		if !groupDenied {
			if c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, t.Topic) {
				allowed.Topics = append(allowed.Topics, t)
				continue
			}
			code = kerr.TopicAuthorizationFailed.Code
		}
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		denied = append(denied, rt)
	}
	if len(denied) == 0 && !groupDenied {
		wait := c.b.groups.OffsetCommit(r)
		return func(ctx context.Context) kmsg.Response { return wait(ctx) }, nil
	}
	if len(allowed.Topics) == 0 || groupDenied {
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		resp.Topics = denied
		return respond(resp)
	}
	wait := c.b.groups.OffsetCommit(&allowed)
	return func(ctx context.Context) kmsg.Response {
		resp := wait(ctx)
		resp.Topics = append(resp.Topics, denied...)
		return resp
	}, nil
}
