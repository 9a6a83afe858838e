package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// DeleteAcls v0-v3: removes the bindings each filter selects
// (meta.ACLFilter; v0 filters select LITERAL bindings), every filter's
// in one metadata change, and lists them per filter. A filter with an
// UNKNOWN field gets INVALID_REQUEST and the others still apply. Needs
// ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED); without an
// authorizer every filter gets SECURITY_DISABLED.

func init() { register(31, 0, 3, handleDeleteACLs) }

func handleDeleteACLs(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.DeleteACLsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(r.Filters))
	for i := range resp.Results {
		resp.Results[i] = kmsg.NewDeleteACLsResponseResult()
	}
	failAll := func(code int16, err error) (finisher, error) {
		for i := range resp.Results {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code, errorMessage(err)
		}
		return respond(resp)
	}
	if c.b.authz == nil {
		return failAll(kerr.SecurityDisabled.Code, errNoAuthorizer)
	}
	if !c.allowedCluster(kmsg.ACLOperationAlter) {
		return failAll(kerr.ClusterAuthorizationFailed.Code, nil)
	}
	var filters []meta.ACLFilter
	var at []int
	for i, rf := range r.Filters {
		f := meta.ACLFilter{
			ResourceType: rf.ResourceType, ResourceName: rf.ResourceName, PatternType: rf.ResourcePatternType,
			Principal: rf.Principal, Host: rf.Host, Operation: rf.Operation, Permission: rf.PermissionType,
		}
		if req.version == 0 {
			f.PatternType = kmsg.ACLResourcePatternTypeLiteral
		}
		if err := f.Validate(); err != nil {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.InvalidRequest.Code, errorMessage(err)
			continue
		}
		filters = append(filters, f)
		at = append(at, i)
	}
	deleted, err := c.b.meta.DeleteACLs(c.ctx, filters)
	for j, i := range at {
		if err != nil {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = errorCode(err), errorMessage(err)
			continue
		}
		for _, a := range deleted[j] {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = a.ResourceType, a.ResourceName, a.PatternType
			m.Principal, m.Host, m.Operation, m.PermissionType = a.Principal, a.Host, a.Operation, a.Permission
			resp.Results[i].MatchingACLs = append(resp.Results[i].MatchingACLs, m)
		}
	}
	return respond(resp)
}
