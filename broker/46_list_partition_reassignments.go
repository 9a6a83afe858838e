package broker

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// ListPartitionReassignments v0: the reassignments in progress, of the
// named partitions or (null topics) of every partition, each with its
// full replica list and the replicas being added and removed. A named
// partition not being reassigned (or unknown) is left out, as Kafka
// does.
// With an authorizer it needs DESCRIBE on the cluster
// (CLUSTER_AUTHORIZATION_FAILED).

func init() { register(46, 0, 0, handleListPartitionReassignments) }

func handleListPartitionReassignments(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.ListPartitionReassignmentsRequest)
	resp := r.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if !c.allowedCluster(kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return respond(resp)
	}
	cl := c.b.meta.Cluster()
	add := func(t *meta.Topic, idx []int32) {
		st := kmsg.NewListPartitionReassignmentsResponseTopic()
		st.Topic = t.Name
		for _, i := range idx {
			if i < 0 || int(i) >= len(t.Partitions) || !t.Partitions[i].Reassigning() {
				continue
			}
			p := t.Partitions[i]
			sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			sp.Partition = i
			sp.Replicas = slices.Clone(p.Replicas)
			sp.AddingReplicas = slices.Clone(p.AddingReplicas)
			sp.RemovingReplicas = slices.Clone(p.RemovingReplicas)
			st.Partitions = append(st.Partitions, sp)
		}
		if len(st.Partitions) > 0 {
			resp.Topics = append(resp.Topics, st)
		}
	}
	if r.Topics == nil {
		for _, name := range slices.Sorted(maps.Keys(cl.Topics)) {
			t := cl.Topics[name]
			idx := make([]int32, len(t.Partitions))
			for i := range idx {
				idx[i] = int32(i)
			}
			add(t, idx)
		}
		return respond(resp)
	}
	for _, rt := range r.Topics {
		if t := cl.Topics[rt.Topic]; t != nil {
			add(t, rt.Partitions)
		}
	}
	return respond(resp)
}
