package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup v0-v5. Before v3 one member leaves by member id and errors are
// top-level; v3+ removes a batch of members, each by member id or by
// group.instance.id alone (KIP-345), with an error per member. The reason
// (v5+) is not recorded. With an authorizer the group needs READ
// (GROUP_AUTHORIZATION_FAILED, top-level).

func init() { register(13, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.LeaveGroupRequest)
	if !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, r.Group) {
		resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return respond(resp)
	}
	return respond(c.b.groups.LeaveGroup(r))
}
