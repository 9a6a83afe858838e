package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup v0-v5. The leader sends the assignment it computed; every
// member's response waits until the assignment is stored durably in
// __consumer_offsets, then carries that member's part. v5+ checks the
// protocol type and name (INCONSISTENT_GROUP_PROTOCOL). The broker never
// reads assignments: every client-side assignor works. With an
// authorizer the group needs READ (GROUP_AUTHORIZATION_FAILED).

func init() { register(14, 0, 5, handleSyncGroup) }

func handleSyncGroup(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.SyncGroupRequest)
	if !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, r.Group) {
		resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return respond(resp)
	}
	wait := c.b.groups.SyncGroup(r)
	return func(ctx context.Context) kmsg.Response { return wait(ctx) }, nil
}
