package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// DescribeCluster v0-v2. Authorized operations are computed when asked
// and an authorizer is on (KIP-430); brokers are listed by id, live ones
// only unless the request includes fenced brokers (v2). The controller is the Raft
// leader of the metadata quorum.

func init() { register(60, 0, 2, handleDescribeCluster) }

func handleDescribeCluster(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	cl := c.b.meta.Cluster()
	resp.ClusterID = cl.ClusterID
	resp.ControllerID = cl.ControllerID
	resp.EndpointType = r.EndpointType
	if r.IncludeClusterAuthorizedOperations && c.b.authz != nil {
		resp.ClusterAuthorizedOperations = c.authorizedOperations(kmsg.ACLResourceTypeCluster, meta.ClusterResourceName)
	}
	ids := make([]int32, 0, len(cl.Brokers))
	for id := range cl.Brokers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		br := cl.Brokers[id]
		if br.Fenced && !r.IncludeFencedBrokers {
			continue
		}
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.IsFenced = br.Fenced
		rb.NodeID = br.ID
		rb.Host, rb.Port = c.endpoint(br)
		if br.Rack != "" {
			rack := br.Rack
			rb.Rack = &rack
		}
		resp.Brokers = append(resp.Brokers, rb)
	}
	return respond(resp)
}
