package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// CreatePartitions v0-v3. Partitions only grow: a count at or below the
// current one is INVALID_PARTITIONS, and existing partitions keep their
// records. Manual assignments for the new partitions are not supported yet
// (INVALID_REPLICA_ASSIGNMENT); new partitions are placed like a new
// topic's. Growth past max.broker.partitions is refused as in CreateTopics
// (INVALID_PARTITIONS for a count that could never fit, POLICY_VIOLATION
// from the metadata change when a broker would hold more replicas than its
// limit), and nothing changes.
// With an authorizer a topic needs ALTER (TOPIC_AUTHORIZATION_FAILED).

func init() { register(37, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.CreatePartitionsRequest)
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	b := c.b
	grown := false
	for _, rt := range r.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		fail := func(code int16, msg string) {
			st.ErrorCode = code
			st.ErrorMessage = &msg
		}
		t := b.meta.Cluster().Topics[rt.Topic]
		var limitErr error
		if t != nil && rt.Count > int32(len(t.Partitions)) {
			limitErr = b.checkPartitionCount(rt.Topic, rt.Count, topicRF(t))
		}
		switch {
		case !c.allowed(kmsg.ACLOperationAlter, kmsg.ACLResourceTypeTopic, rt.Topic):
			fail(kerr.TopicAuthorizationFailed.Code, "not authorized to alter topic "+rt.Topic)
		case t == nil:
			fail(kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("topic %s does not exist", rt.Topic))
		case len(rt.Assignment) > 0:
			fail(kerr.InvalidReplicaAssignment.Code, "manual assignment of new partitions is not supported")
		case rt.Count <= int32(len(t.Partitions)):
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("topic %s has %d partitions; partitions can only grow", rt.Topic, len(t.Partitions)))
		case limitErr != nil:
			fail(errorCode(limitErr), limitErr.Error())
		case r.ValidateOnly:
			if err := b.meta.ValidateNewPartitions(rt.Topic, rt.Count); err != nil {
				fail(errorCode(err), err.Error())
			}
		default:
			if err := b.meta.CreatePartitions(c.ctx, rt.Topic, rt.Count); err != nil {
				fail(errorCode(err), err.Error())
			} else {
				grown = true
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	if grown {
		if err := b.parts.reconcile(); err != nil {
			b.logger.Error("reconcile after create partitions", "err", err)
		}
	}
	return respond(resp)
}

// topicRF is a topic's replication factor: its first partition's replica
// count.
func topicRF(t *meta.Topic) int16 {
	if len(t.Partitions) == 0 {
		return 1
	}
	return int16(len(t.Partitions[0].Replicas))
}
