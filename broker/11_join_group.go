package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup v0-v9. v0 has no rebalance timeout (the session timeout
// stands in); v4+ hands new dynamic members an id with MEMBER_ID_REQUIRED
// first (KIP-394); v5+ carries group.instance.id for static membership
// (KIP-345); v9 tells a restarted static leader to skip assignment
// (KIP-814). The response waits, in the writer goroutine, until the join
// phase of the rebalance ends; the group is in package group.
//
// With an authorizer the group needs READ (GROUP_AUTHORIZATION_FAILED).
//
// Not here: the consumer group protocol of KIP-848 (ConsumerGroupHeartbeat).

func init() { register(11, 0, 9, handleJoinGroup) }

func handleJoinGroup(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.JoinGroupRequest)
	if !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, r.Group) {
		resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return respond(resp)
	}
	wait := c.b.groups.JoinGroup(r, req.clientID, c.clientHost())
	return func(ctx context.Context) kmsg.Response { return wait(ctx) }, nil
}
