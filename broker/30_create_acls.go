package broker

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// CreateAcls v0-v3: adds bindings to the replicated metadata, the valid
// ones of a request in one metadata change, so they reach every broker
// together. An invalid binding (meta.ACL.Validate: an ANY or UNKNOWN
// field, a MATCH pattern, an empty name, a CLUSTER not named
// kafka-cluster, a principal not of the form Type:name) gets
// INVALID_REQUEST and the others are still created, as Kafka does; one
// that exists already is a success. v0 bindings are LITERAL. Needs ALTER
// on the cluster (CLUSTER_AUTHORIZATION_FAILED); without an authorizer
// every creation gets SECURITY_DISABLED.

func init() { register(30, 0, 3, handleCreateACLs) }

func handleCreateACLs(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.CreateACLsRequest)
	resp := r.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(r.Creations))
	for i := range resp.Results {
		resp.Results[i] = kmsg.NewCreateACLsResponseResult()
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
	var valid []meta.ACL
	var at []int
	for i, cr := range r.Creations {
		a := meta.ACL{
			ResourceType: cr.ResourceType, ResourceName: cr.ResourceName, PatternType: cr.ResourcePatternType,
			Principal: cr.Principal, Host: cr.Host, Operation: cr.Operation, Permission: cr.PermissionType,
		}
		if req.version == 0 {
			a.PatternType = kmsg.ACLResourcePatternTypeLiteral
		}
		if err := a.Validate(); err != nil {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.InvalidRequest.Code, errorMessage(err)
			continue
		}
		valid = append(valid, a)
		at = append(at, i)
	}
	if err := c.b.meta.CreateACLs(c.ctx, valid); err != nil {
		code := errorCode(err)
		if errors.Is(err, meta.ErrInvalidACL) {
			code = kerr.InvalidRequest.Code
		}
		for _, i := range at {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code, errorMessage(err)
		}
	}
	return respond(resp)
}
