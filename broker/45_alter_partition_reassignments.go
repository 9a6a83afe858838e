package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// AlterPartitionReassignments v0-v1: starts, replaces or (null replicas)
// cancels the reassignment of each named partition, as Kafka's
// adding/removing replicas protocol (see broker/internal/meta
// operations.go): the replica list becomes the target plus the replicas
// being removed; the new replicas copy the log from the leader and join
// the ISR; once every target replica is in the ISR the removed ones leave
// (their brokers delete their copies) and a leader among them hands over
// to a target replica. Errors per partition: UNKNOWN_TOPIC_OR_PARTITION,
// INVALID_REPLICA_ASSIGNMENT (no replicas, a broker twice, an unknown
// broker), NO_REASSIGNMENT_IN_PROGRESS (a cancel), and from v1
// INVALID_REPLICATION_FACTOR when the target changes the replica count
// and the request does not allow it (KIP-860). Topic ids are not taken:
// the request names topics.
// With an authorizer it needs ALTER on the cluster
// (CLUSTER_AUTHORIZATION_FAILED).

func init() { register(45, 0, 1, handleAlterPartitionReassignments) }

func handleAlterPartitionReassignments(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = r.AllowReplicationFactorChange
	if !c.allowedCluster(kmsg.ACLOperationAlter) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return respond(resp)
	}
	ctx, cancel := adminContext(c, r.TimeoutMillis)
	defer cancel()
	for _, rt := range r.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			err := c.b.reassign(ctx, r, rt.Topic, rp)
			sp.ErrorCode = electionCode(err)
			sp.ErrorMessage = errorMessage(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp)
}

// errReplicationFactorChange refuses a target of another size when the
// request does not allow it.
var errReplicationFactorChange = fmt.Errorf("%w: the reassignment changes the replication factor", meta.ErrInvalidReplicationFactor)

func (b *Broker) reassign(ctx context.Context, r *kmsg.AlterPartitionAssignmentsRequest, topic string, rp kmsg.AlterPartitionAssignmentsRequestTopicPartition) error {
	t := b.meta.Cluster().Topics[topic]
	if t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
		return fmt.Errorf("%w: %s-%d", meta.ErrUnknownTopic, topic, rp.Partition)
	}
	if rp.Replicas != nil && r.Version >= 1 && !r.AllowReplicationFactorChange && len(rp.Replicas) != len(t.Partitions[rp.Partition].OriginalReplicas()) {
		return errReplicationFactorChange
	}
	return b.meta.Reassign(ctx, meta.Reassignment{Topic: topic, Index: rp.Partition, Replicas: rp.Replicas})
}
