package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups v0-v2. Only an empty group can be deleted
// (NON_EMPTY_GROUP otherwise); its offsets and metadata get tombstones in
// __consumer_offsets and the response waits until they are durable.
//
// With an authorizer a group needs DELETE (GROUP_AUTHORIZATION_FAILED in
// its place).
//
// Not here: v3 (the KIP-1043 error messages and consumer-protocol groups).

func init() { register(42, 0, 2, handleDeleteGroups) }

func handleDeleteGroups(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.DeleteGroupsRequest)
	allowed := *r
	allowed.Groups = nil
	var denied []string
	for _, g := range r.Groups {
		if c.allowed(kmsg.ACLOperationDelete, kmsg.ACLResourceTypeGroup, g) {
			allowed.Groups = append(allowed.Groups, g)
		} else {
			denied = append(denied, g)
		}
	}
	wait := c.b.groups.DeleteGroups(&allowed)
	return func(ctx context.Context) kmsg.Response {
		resp := wait(ctx)
		for _, g := range denied {
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}, nil
}
