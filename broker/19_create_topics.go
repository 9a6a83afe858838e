package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// CreateTopics v2-v7. NumPartitions -1 takes num.partitions and
// ReplicationFactor -1 takes default.replication.factor; replicas spread
// over the live brokers, and a replication factor above their number is
// INVALID_REPLICATION_FACTOR; a manual replica assignment is honoured. Any
// broker takes the request: the metadata store forwards it to the
// controller.
// Configs are validated by Kafka's names and types (INVALID_CONFIG with the
// reason). A topic that could not fit under the live brokers'
// max.broker.partitions even alone gets INVALID_PARTITIONS, and one that
// would put more replicas on a broker than its max.broker.partitions
// POLICY_VIOLATION, decided by the metadata change that would create it,
// so concurrent requests cannot pass the limit together; a topic is
// created in one metadata change, or not at all. ValidateOnly checks
// everything against the metadata as it is and creates nothing. The topic's
// partitions are open on this broker before the response is sent, so a
// produce right after succeeds.
//
// With an authorizer a topic needs CREATE on the cluster or on the topic
// (TOPIC_AUTHORIZATION_FAILED), as Kafka's, and its configs are returned
// only to a principal that may DESCRIBE_CONFIGS it (else the topic's
// ConfigErrorCode is TOPIC_AUTHORIZATION_FAILED).

func init() { register(19, 2, 7, handleCreateTopics) }

func handleCreateTopics(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.CreateTopicsRequest)
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	b := c.b
	seen := make(map[string]int)
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	created := false
	for _, rt := range r.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions = -1
		st.ReplicationFactor = -1
		fail := func(code int16, format string, args ...any) {
			st.ErrorCode = code
			msg := fmt.Sprintf(format, args...)
			st.ErrorMessage = &msg
		}
		spec, err := b.topicSpec(rt)
		if err == nil {
			// A topic that could never fit is refused before its
			// partitions are placed; the metadata change refuses one
			// that does not fit beside the others
			// (max.broker.partitions).
			err = b.checkPartitionCount(rt.Topic, spec.NumPartitions, spec.ReplicationFactor)
		}
		switch {
		case seen[rt.Topic] > 1:
			fail(kerr.InvalidRequest.Code, "topic %s appears more than once in the request", rt.Topic)
		case !c.allowedQuiet(kmsg.ACLOperationCreate, kmsg.ACLResourceTypeCluster, meta.ClusterResourceName) &&
			!c.allowed(kmsg.ACLOperationCreate, kmsg.ACLResourceTypeTopic, rt.Topic):
			fail(kerr.TopicAuthorizationFailed.Code, "not authorized to create topic %s", rt.Topic)
		case err != nil:
			var ce *configError
			if asConfigError(err, &ce) {
				fail(kerr.InvalidConfig.Code, "%s", ce.msg)
			} else {
				fail(errorCode(err), "%v", err)
			}
		case r.ValidateOnly:
			if err := b.meta.ValidateNewTopic(spec); err != nil {
				fail(errorCode(err), "%v", err)
			} else {
				st.NumPartitions = spec.NumPartitions
				st.ReplicationFactor = spec.ReplicationFactor
			}
		default:
			t, err := b.meta.CreateTopic(c.ctx, spec)
			if err != nil {
				fail(errorCode(err), "%v", err)
				break
			}
			created = true
			st.TopicID = t.ID
			st.NumPartitions = int32(len(t.Partitions))
			st.ReplicationFactor = spec.ReplicationFactor
		}
		if st.ErrorCode == 0 && r.Version >= 5 && !c.allowedQuiet(kmsg.ACLOperationDescribeConfigs, kmsg.ACLResourceTypeTopic, rt.Topic) {
			// The topic is created, but its configs are for those who
			// may describe them, as Kafka's.
			st.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code
		} else if st.ErrorCode == 0 && r.Version >= 5 {
			for _, e := range b.topicConfigEntries(spec.Configs) {
				ce := kmsg.NewCreateTopicsResponseTopicConfig()
				ce.Name = e.name
				v := e.value
				ce.Value = &v
				ce.Source = e.source
				st.Configs = append(st.Configs, ce)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	if created {
		if err := b.parts.reconcile(); err != nil {
			b.logger.Error("reconcile after create", "err", err)
		}
	}
	return respond(resp)
}

// configError is a topic config the broker refuses.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func asConfigError(err error, target **configError) bool {
	ce, ok := err.(*configError)
	if ok {
		*target = ce
	}
	return ok
}

// topicSpec validates a CreateTopics entry and turns it into a metadata
// request.
func (b *Broker) topicSpec(rt kmsg.CreateTopicsRequestTopic) (meta.TopicSpec, error) {
	spec := meta.TopicSpec{
		Name:              rt.Topic,
		NumPartitions:     rt.NumPartitions,
		ReplicationFactor: rt.ReplicationFactor,
		Configs:           make(map[string]string),
	}
	if err := meta.ValidateTopicName(rt.Topic); err != nil {
		return spec, err
	}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return spec, fmt.Errorf("%w: both a replica assignment and partitions or replication factor were given", meta.ErrInvalidPartitions)
		}
		spec.Assignments = make([][]int32, len(rt.ReplicaAssignment))
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(rt.ReplicaAssignment) || spec.Assignments[a.Partition] != nil {
				return spec, fmt.Errorf("%w: replica assignment partitions must be 0..%d, each once", meta.ErrInvalidPartitions, len(rt.ReplicaAssignment)-1)
			}
			spec.Assignments[a.Partition] = a.Replicas
		}
		spec.NumPartitions = int32(len(rt.ReplicaAssignment))
		spec.ReplicationFactor = int16(len(rt.ReplicaAssignment[0].Replicas))
	}
	if spec.NumPartitions == -1 {
		spec.NumPartitions = b.cfg.NumPartitions
	}
	if spec.ReplicationFactor == -1 {
		spec.ReplicationFactor = b.cfg.DefaultReplicationFactor
	}
	for _, kv := range rt.Configs {
		if err := validateTopicConfig(kv.Name, kv.Value); err != nil {
			return spec, &configError{err.Error()}
		}
		spec.Configs[kv.Name] = *kv.Value
	}
	return spec, b.checkTopicConfigs(spec.Configs)
}
