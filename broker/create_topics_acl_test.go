package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateTopics returns a new topic's configs only to a principal that may
// DESCRIBE_CONFIGS it: one allowed only CREATE gets the topic and
// TOPIC_AUTHORIZATION_FAILED for its configs, as from Kafka.
func TestCreateTopicsHidesConfigsWithoutDescribeConfigs(t *testing.T) {
	b := aclBroker(t, nil)
	admin := kadm.NewClient(userClient(t, b, "admin"))
	for _, acl := range []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:alice").Topics("a-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpCreate),
		kadm.NewACLs().Allow("User:bob").Topics("b-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpCreate, kadm.OpDescribeConfigs),
	} {
		res, err := admin.CreateACLs(testContext(t), acl)
		if err != nil || res[0].Err != nil {
			t.Fatalf("create acl: %v %v", err, res)
		}
	}
	create := func(user, topic string) kmsg.CreateTopicsResponseTopic {
		t.Helper()
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = 7
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
		req.Topics = append(req.Topics, rt)
		resp := call[*kmsg.CreateTopicsResponse](t, userClient(t, b, user), req)
		return resp.Topics[0]
	}
	a := create("alice", "a-orders")
	if a.ErrorCode != 0 || a.ConfigErrorCode != kerr.TopicAuthorizationFailed.Code || len(a.Configs) != 0 || a.NumPartitions != 1 {
		t.Fatalf("alice (CREATE only): error %d, config error %d, %d configs, %d partitions; want the topic and TOPIC_AUTHORIZATION_FAILED for its configs",
			a.ErrorCode, a.ConfigErrorCode, len(a.Configs), a.NumPartitions)
	}
	bb := create("bob", "b-orders")
	if bb.ErrorCode != 0 || bb.ConfigErrorCode != 0 || len(bb.Configs) == 0 {
		t.Fatalf("bob (CREATE, DESCRIBE_CONFIGS): error %d, config error %d, %d configs; want the configs", bb.ErrorCode, bb.ConfigErrorCode, len(bb.Configs))
	}
}
