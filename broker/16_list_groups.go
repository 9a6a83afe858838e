package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// ListGroups v0-v5: the groups this broker coordinates, with their state
// (v4+, filterable) and type (v5+, filterable; every group is "classic").
// With an authorizer, as Kafka's: DESCRIBE on the cluster lists every
// group, else only those the principal may DESCRIBE.

func init() { register(16, 0, 5, handleListGroups) }

func handleListGroups(c *conn, req *request) (finisher, error) {
	resp := c.b.groups.ListGroups(req.kreq.(*kmsg.ListGroupsRequest))
	if !c.allowedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeCluster, meta.ClusterResourceName) {
		resp.Groups = slices.DeleteFunc(resp.Groups, func(g kmsg.ListGroupsResponseGroup) bool {
			return !c.allowedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, g.Group)
		})
	}
	return respond(resp)
}
