package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups v0-v6: state, protocol type, and members with client id,
// host and (v4+) instance id; a Stable group also gives the chosen
// protocol and each member's metadata and assignment. An unknown group is
// Dead (v6+: GROUP_ID_NOT_FOUND). With an authorizer a group needs
// DESCRIBE (GROUP_AUTHORIZATION_FAILED in its place), and authorized
// operations are computed when asked (v3+).

func init() { register(15, 0, 6, handleDescribeGroups) }

func handleDescribeGroups(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.DescribeGroupsRequest)
	if c.b.authz == nil {
		return respond(c.b.groups.DescribeGroups(r))
	}
	allowed := *r
	allowed.Groups = nil
	for _, g := range r.Groups {
		if c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, g) {
			allowed.Groups = append(allowed.Groups, g)
		}
	}
	served := c.b.groups.DescribeGroups(&allowed)
	byName := make(map[string]kmsg.DescribeGroupsResponseGroup, len(served.Groups))
	for _, g := range served.Groups {
		if r.IncludeAuthorizedOperations {
			g.AuthorizedOperations = c.authorizedOperations(kmsg.ACLResourceTypeGroup, g.Group)
		}
		byName[g.Group] = g
	}
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.ThrottleMillis = served.ThrottleMillis
	for _, name := range r.Groups {
		g, ok := byName[name]
		if !ok {
			g = kmsg.NewDescribeGroupsResponseGroup()
			g.Group, g.ErrorCode = name, kerr.GroupAuthorizationFailed.Code
		}
		resp.Groups = append(resp.Groups, g)
	}
	return respond(resp)
}
