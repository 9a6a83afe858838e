package broker

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// DescribeAcls v0-v3: the bindings a filter selects (meta.ACLFilter),
// grouped by resource pattern in the order they were created. v0 filters
// have no pattern type and select LITERAL bindings, as Kafka's. Needs
// DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED); without an
// authorizer the answer is SECURITY_DISABLED, as Kafka's.

func init() { register(29, 0, 3, handleDescribeACLs) }

func handleDescribeACLs(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.DescribeACLsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeACLsResponse)
	fail := func(code int16, err error) (finisher, error) {
		resp.ErrorCode, resp.ErrorMessage = code, errorMessage(err)
		return respond(resp)
	}
	if c.b.authz == nil {
		return fail(kerr.SecurityDisabled.Code, errNoAuthorizer)
	}
	if !c.allowedCluster(kmsg.ACLOperationDescribe) {
		return fail(kerr.ClusterAuthorizationFailed.Code, nil)
	}
	f := meta.ACLFilter{
		ResourceType: r.ResourceType, ResourceName: r.ResourceName, PatternType: r.ResourcePatternType,
		Principal: r.Principal, Host: r.Host, Operation: r.Operation, Permission: r.PermissionType,
	}
	if req.version == 0 {
		f.PatternType = kmsg.ACLResourcePatternTypeLiteral
	}
	if err := f.Validate(); err != nil {
		return fail(kerr.InvalidRequest.Code, err)
	}
	resp.Resources = describeACLResources(c.b.meta.Cluster().ACLs.Matching(f))
	return respond(resp)
}

// errNoAuthorizer answers the ACL APIs of a broker without an authorizer.
var errNoAuthorizer = errors.New("no authorizer is configured on the broker (Security.Authorizer, --authorizer)")

// describeACLResources groups bindings by resource pattern, patterns in
// the order their first binding appears.
func describeACLResources(acls []meta.ACL) []kmsg.DescribeACLsResponseResource {
	type pattern struct {
		typ  kmsg.ACLResourceType
		name string
		pat  kmsg.ACLResourcePatternType
	}
	at := make(map[pattern]int)
	var out []kmsg.DescribeACLsResponseResource
	for _, a := range acls {
		p := pattern{a.ResourceType, a.ResourceName, a.PatternType}
		i, ok := at[p]
		if !ok {
			i = len(out)
			at[p] = i
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName, res.ResourcePatternType = p.typ, p.name, p.pat
			out = append(out, res)
		}
		entry := kmsg.NewDescribeACLsResponseResourceACL()
		entry.Principal, entry.Host, entry.Operation, entry.PermissionType = a.Principal, a.Host, a.Operation, a.Permission
		out[i].ACLs = append(out[i].ACLs, entry)
	}
	return out
}
