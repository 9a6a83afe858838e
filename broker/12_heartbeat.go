package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat v0-v4. A heartbeat keeps a member's session alive and tells it
// of a rebalance (REBALANCE_IN_PROGRESS) or a stale generation
// (ILLEGAL_GENERATION); v3+ checks group.instance.id (FENCED_INSTANCE_ID).
// With an authorizer the group needs READ (GROUP_AUTHORIZATION_FAILED).

func init() { register(12, 0, 4, handleHeartbeat) }

func handleHeartbeat(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.HeartbeatRequest)
	if !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, r.Group) {
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return respond(resp)
	}
	return respond(c.b.groups.Heartbeat(r))
}
