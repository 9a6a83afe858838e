package broker_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// aclBroker starts a broker with the authorizer on, User:admin its super
// user, a PLAINTEXT listener (User:ANONYMOUS) and a SASL_PLAINTEXT one
// for admin, alice, bob and carol.
func aclBroker(t *testing.T, configure func(*broker.Config)) *broker.Broker {
	t.Helper()
	cfg := broker.Config{
		GroupInitialRebalanceDelay:      -1,
		OffsetsTopicPartitions:          1,
		TransactionStateTopicPartitions: 1,
		Security: broker.SecurityConfig{
			Listeners: "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
			SASL: broker.SASLConfig{Users: map[string]string{
				"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret",
			}},
			Authorizer: broker.AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:admin"}},
		},
	}
	if configure != nil {
		configure(&cfg)
	}
	return testutil.StartBroker(t, cfg)
}

// userClient is a client authenticated as user, or anonymous on the
// PLAINTEXT listener for "".
func userClient(t *testing.T, b *broker.Broker, user string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	if user == "" {
		return newClient(t, b.ListenerAddr("PLAINTEXT"), opts...)
	}
	opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: user + "-secret"}.AsMechanism()))
	return newClient(t, b.ListenerAddr("SASL_PLAINTEXT"), opts...)
}

// call sends req straight to the broker (no coordinator or leader
// look-up, so the broker's own answer to this API is what is checked).
func call[R kmsg.Response](t *testing.T, cl *kgo.Client, req kmsg.Request) R {
	t.Helper()
	// A metadata request for no topics tells the client the broker's
	// id, and is allowed to everyone.
	md := kmsg.NewPtrMetadataRequest()
	md.Topics = []kmsg.MetadataRequestTopic{}
	mresp, err := md.RequestWith(testContext(t), cl)
	if err != nil || len(mresp.Brokers) != 1 {
		t.Fatalf("metadata: %v", err)
	}
	resp, err := cl.Broker(int(mresp.Brokers[0].NodeID)).Request(testContext(t), req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp.(R)
}

func errCode(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	if err != nil {
		return -2
	}
	return 0
}

// The authorization matrix: for each API a principal calls on a resource,
// the error Kafka's authorizer would give, over TCP with franz-go and
// SASL users, the ACLs made with kadm. It covers DENY over ALLOW,
// PREFIXED and LITERAL patterns, the wildcard principal, hosts, implied
// operations, the super user and anonymous connections.
func TestAuthorizationMatrix(t *testing.T) {
	b := aclBroker(t, nil)
	admin := kadm.NewClient(userClient(t, b, "admin"))
	for _, name := range []string{"orders", "orders-eu", "payments", "public", "hosted", "secret"} {
		createTopic(t, admin, name, 1, nil)
	}
	grant := func(acl *kadm.ACLBuilder) {
		t.Helper()
		res, err := admin.CreateACLs(testContext(t), acl)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("create acl %+v: %v", r, r.Err)
			}
		}
	}
	grant(kadm.NewACLs().Allow("User:alice").Topics("orders").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpAll))
	grant(kadm.NewACLs().Deny("User:alice").Topics("orders-eu").Operations(kadm.OpWrite))
	grant(kadm.NewACLs().Allow("User:alice").Groups("g-alice").Operations(kadm.OpRead))
	grant(kadm.NewACLs().Allow("User:alice").TransactionalIDs("tx-alice").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite))
	grant(kadm.NewACLs().Allow("User:alice").AllowHosts("127.0.0.1").Topics("hosted").Operations(kadm.OpRead))
	grant(kadm.NewACLs().Allow("User:bob").AllowHosts("10.0.0.1").Topics("payments").Operations(kadm.OpRead))
	grant(kadm.NewACLs().Allow("User:bob").Topics("payments").Operations(kadm.OpAlterConfigs))
	grant(kadm.NewACLs().Allow("User:*").Topics("public").Operations(kadm.OpDescribe))
	grant(kadm.NewACLs().Allow("User:carol").Clusters().Operations(kadm.OpCreate, kadm.OpDescribe))

	// Fetch names topics (v12) and AddPartitionsToTxn is the client's
	// form (v3): franz-go sends the highest version both sides know.
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(1, 12)
	versions.SetMaxKeyVersion(24, 3)
	clients := map[string]*kgo.Client{}
	for _, u := range []string{"", "admin", "alice", "bob", "carol"} {
		clients[u] = userClient(t, b, u, kgo.DisableIdempotentWrite(), kgo.RequestRetries(0), kgo.MaxVersions(versions))
	}
	node := strconv.Itoa(int(call[*kmsg.MetadataResponse](t, clients["admin"], kmsg.NewPtrMetadataRequest()).Brokers[0].NodeID))

	produce := func(topic string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			return errCode(cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr())
		}
	}
	fetch := func(topic string, replica int32) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID, req.ReplicaState.ID = replica, replica
			req.MaxWaitMillis, req.MaxBytes = 1, 1<<20
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.PartitionMaxBytes = 1 << 20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp := call[*kmsg.FetchResponse](t, cl, req)
			return resp.Topics[0].Partitions[0].ErrorCode
		}
	}
	metadata := func(topic string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
			return call[*kmsg.MetadataResponse](t, cl, req).Topics[0].ErrorCode
		}
	}
	listOffsets := func(topic string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrListOffsetsRequest()
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp = -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return call[*kmsg.ListOffsetsResponse](t, cl, req).Topics[0].Partitions[0].ErrorCode
		}
	}
	createTopics := func(topic string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrCreateTopicsRequest()
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
			req.Topics = append(req.Topics, rt)
			req.TimeoutMillis = 30000
			return call[*kmsg.CreateTopicsResponse](t, cl, req).Topics[0].ErrorCode
		}
	}
	deleteTopics := func(topic string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrDeleteTopicsRequest()
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
			req.TopicNames = []string{topic}
			req.TimeoutMillis = 30000
			return call[*kmsg.DeleteTopicsResponse](t, cl, req).Topics[0].ErrorCode
		}
	}
	describeConfigs := func(typ kmsg.ConfigResourceType, name string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrDescribeConfigsRequest()
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = typ, name
			req.Resources = append(req.Resources, rr)
			return call[*kmsg.DescribeConfigsResponse](t, cl, req).Resources[0].ErrorCode
		}
	}
	alterConfigs := func(topic string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			rr := kmsg.NewIncrementalAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
			rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			rc.Name, rc.Value = "retention.ms", kmsg.StringPtr("86400000")
			rr.Configs = append(rr.Configs, rc)
			req.Resources = append(req.Resources, rr)
			return call[*kmsg.IncrementalAlterConfigsResponse](t, cl, req).Resources[0].ErrorCode
		}
	}
	createPartitions := func(topic string, count int32) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrCreatePartitionsRequest()
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = topic, count
			req.Topics = append(req.Topics, rt)
			req.TimeoutMillis = 30000
			return call[*kmsg.CreatePartitionsResponse](t, cl, req).Topics[0].ErrorCode
		}
	}
	deleteRecords := func(topic string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrDeleteRecordsRequest()
			rt := kmsg.NewDeleteRecordsRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewDeleteRecordsRequestTopicPartition()
			rp.Offset = 0
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			req.TimeoutMillis = 30000
			return call[*kmsg.DeleteRecordsResponse](t, cl, req).Topics[0].Partitions[0].ErrorCode
		}
	}
	findCoordinator := func(keyType int8, key string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorType, req.CoordinatorKeys = keyType, []string{key}
			return call[*kmsg.FindCoordinatorResponse](t, cl, req).Coordinators[0].ErrorCode
		}
	}
	joinGroup := func(group string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrJoinGroupRequest()
			req.Group, req.ProtocolType = group, "consumer"
			req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name = "range"
			req.Protocols = append(req.Protocols, p)
			return call[*kmsg.JoinGroupResponse](t, cl, req).ErrorCode
		}
	}
	describeGroups := func(group string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrDescribeGroupsRequest()
			req.Groups = []string{group}
			return call[*kmsg.DescribeGroupsResponse](t, cl, req).Groups[0].ErrorCode
		}
	}
	offsetCommit := func(group, topic string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrOffsetCommitRequest()
			req.Group, req.Generation = group, -1
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return call[*kmsg.OffsetCommitResponse](t, cl, req).Topics[0].Partitions[0].ErrorCode
		}
	}
	offsetFetch := func(group, topic string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrOffsetFetchRequest()
			rg := kmsg.NewOffsetFetchRequestGroup()
			rg.Group = group
			rt := kmsg.NewOffsetFetchRequestGroupTopic()
			rt.Topic, rt.Partitions = topic, []int32{0}
			rg.Topics = append(rg.Topics, rt)
			req.Groups = append(req.Groups, rg)
			g := call[*kmsg.OffsetFetchResponse](t, cl, req).Groups[0]
			if g.ErrorCode != 0 {
				return g.ErrorCode
			}
			return g.Topics[0].Partitions[0].ErrorCode
		}
	}
	initProducerID := func(txnID *string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.TransactionalID, req.TransactionTimeoutMillis = txnID, 60000
			return call[*kmsg.InitProducerIDResponse](t, cl, req).ErrorCode
		}
	}
	endTxn := func(txnID string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrEndTxnRequest()
			req.TransactionalID, req.ProducerID, req.ProducerEpoch = txnID, 1, 0
			return call[*kmsg.EndTxnResponse](t, cl, req).ErrorCode
		}
	}
	addPartitionsToTxn := func(txnID, topic string) func(*kgo.Client) int16 {
		return func(cl *kgo.Client) int16 {
			req := kmsg.NewPtrAddPartitionsToTxnRequest()
			req.TransactionalID, req.ProducerID, req.ProducerEpoch = txnID, 1, 0
			rt := kmsg.NewAddPartitionsToTxnRequestTopic()
			rt.Topic, rt.Partitions = topic, []int32{0}
			req.Topics = append(req.Topics, rt)
			return call[*kmsg.AddPartitionsToTxnResponse](t, cl, req).Topics[0].Partitions[0].ErrorCode
		}
	}
	writeTxnMarkers := func(cl *kgo.Client) int16 {
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		rm := kmsg.NewWriteTxnMarkersRequestMarker()
		rm.ProducerID, rm.Committed = 1, true
		rt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		rt.Topic, rt.Partitions = "orders", []int32{0}
		rm.Topics = append(rm.Topics, rt)
		req.Markers = append(req.Markers, rm)
		return call[*kmsg.WriteTxnMarkersResponse](t, cl, req).Markers[0].Topics[0].Partitions[0].ErrorCode
	}
	describeACLs := func(cl *kgo.Client) int16 {
		req := kmsg.NewPtrDescribeACLsRequest()
		req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		return call[*kmsg.DescribeACLsResponse](t, cl, req).ErrorCode
	}
	createACLs := func(cl *kgo.Client) int16 {
		req := kmsg.NewPtrCreateACLsRequest()
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLResourcePatternTypeLiteral
		c.Principal, c.Host, c.Operation, c.PermissionType = "User:bob", "*", kmsg.ACLOperationWrite, kmsg.ACLPermissionTypeAllow
		req.Creations = append(req.Creations, c)
		return call[*kmsg.CreateACLsResponse](t, cl, req).Results[0].ErrorCode
	}
	deleteACLs := func(cl *kgo.Client) int16 {
		req := kmsg.NewPtrDeleteACLsRequest()
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		f.Principal = kmsg.StringPtr("User:nobody")
		req.Filters = append(req.Filters, f)
		return call[*kmsg.DeleteACLsResponse](t, cl, req).Results[0].ErrorCode
	}
	electLeaders := func(cl *kgo.Client) int16 {
		req := kmsg.NewPtrElectLeadersRequest()
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic, rt.Partitions = "orders", []int32{0}
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 30000
		return call[*kmsg.ElectLeadersResponse](t, cl, req).ErrorCode
	}

	// DescribeLogDirs and DescribeQuorum: DESCRIBE on the cluster; a
	// denied DescribeLogDirs names no replica either.
	describeLogDirs := func(cl *kgo.Client) int16 {
		resp := call[*kmsg.DescribeLogDirsResponse](t, cl, kmsg.NewPtrDescribeLogDirsRequest())
		if resp.ErrorCode != 0 && len(resp.Dirs) != 0 {
			t.Errorf("a denied DescribeLogDirs answered %d directories", len(resp.Dirs))
		}
		return resp.ErrorCode
	}
	describeQuorum := func(cl *kgo.Client) int16 {
		req := kmsg.NewPtrDescribeQuorumRequest()
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = "__cluster_metadata"
		rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
		req.Topics = append(req.Topics, rt)
		return call[*kmsg.DescribeQuorumResponse](t, cl, req).ErrorCode
	}

	describeQuotas := func(cl *kgo.Client) int16 {
		return call[*kmsg.DescribeClientQuotasResponse](t, cl, kmsg.NewPtrDescribeClientQuotasRequest()).ErrorCode
	}
	alterQuotas := func(cl *kgo.Client) int16 {
		req := kmsg.NewPtrAlterClientQuotasRequest()
		e := kmsg.NewAlterClientQuotasRequestEntry()
		ec := kmsg.NewAlterClientQuotasRequestEntryEntity()
		ec.Type, ec.Name = "user", kmsg.StringPtr("alice")
		e.Entity = append(e.Entity, ec)
		op := kmsg.NewAlterClientQuotasRequestEntryOp()
		op.Key, op.Value = "producer_byte_rate", 1<<20
		e.Ops = append(e.Ops, op)
		req.Entries = append(req.Entries, e)
		return call[*kmsg.AlterClientQuotasResponse](t, cl, req).Entries[0].ErrorCode
	}
	describeScram := func(cl *kgo.Client) int16 {
		return call[*kmsg.DescribeUserSCRAMCredentialsResponse](t, cl, kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()).ErrorCode
	}
	alterScram := func(cl *kgo.Client) int16 {
		req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations = "dave", 1, 4096
		u.Salt, u.SaltedPassword = []byte("salt-salt"), make([]byte, 32)
		req.Upsertions = append(req.Upsertions, u)
		return call[*kmsg.AlterUserSCRAMCredentialsResponse](t, cl, req).Results[0].ErrorCode
	}

	var (
		ok           = int16(0)
		topicDenied  = kerr.TopicAuthorizationFailed.Code
		groupDenied  = kerr.GroupAuthorizationFailed.Code
		clusterDeny  = kerr.ClusterAuthorizationFailed.Code
		txnDenied    = kerr.TransactionalIDAuthorizationFailed.Code
		memberIDReq  = kerr.MemberIDRequired.Code
		unknownTopic = kerr.UnknownTopicOrPartition.Code
	)
	cases := []struct {
		who, what string
		call      func(*kgo.Client) int16
		want      int16
	}{
		// Produce: WRITE on the topic.
		{"admin", "produce secret (super user)", produce("secret"), ok},
		{"alice", "produce orders (PREFIXED ALLOW ALL)", produce("orders"), ok},
		{"alice", "produce orders-eu (DENY WRITE over ALLOW ALL)", produce("orders-eu"), topicDenied},
		{"alice", "produce secret (no ACL)", produce("secret"), topicDenied},
		{"bob", "produce payments (READ only)", produce("payments"), topicDenied},
		{"", "produce public (DESCRIBE only)", produce("public"), topicDenied},
		// Fetch: READ on the topic; a follower's fetch CLUSTER_ACTION.
		{"alice", "fetch orders-eu (the DENY is of WRITE only)", fetch("orders-eu", -1), ok},
		{"alice", "fetch hosted (host 127.0.0.1 matches)", fetch("hosted", -1), ok},
		{"bob", "fetch payments (READ from host 10.0.0.1 only)", fetch("payments", -1), topicDenied},
		{"", "fetch orders (anonymous)", fetch("orders", -1), topicDenied},
		{"alice", "fetch as a replica (no CLUSTER_ACTION)", fetch("orders", 7), topicDenied},
		// Metadata: DESCRIBE, implied by READ/WRITE/... but not ALTER_CONFIGS.
		{"", "metadata public (User:* DESCRIBE)", metadata("public"), ok},
		{"", "metadata secret", metadata("secret"), topicDenied},
		{"", "metadata of a topic that does not exist", metadata("nowhere"), topicDenied},
		{"alice", "metadata orders-eu (ALL implies DESCRIBE)", metadata("orders-eu"), ok},
		{"alice", "metadata hosted (READ implies DESCRIBE)", metadata("hosted"), ok},
		{"bob", "metadata payments (ALTER_CONFIGS does not imply DESCRIBE)", metadata("payments"), topicDenied},
		{"alice", "metadata of a new orders topic (not auto-created: off)", metadata("orders-new"), unknownTopic},
		{"alice", "list offsets orders", listOffsets("orders"), ok},
		{"alice", "list offsets secret", listOffsets("secret"), topicDenied},
		// Topic administration.
		{"carol", "create topic (CREATE on the cluster)", createTopics("carol-topic"), ok},
		{"alice", "create orders-x (CREATE via PREFIXED ALL)", createTopics("orders-x"), ok},
		{"bob", "create topic", createTopics("bobs"), topicDenied},
		{"bob", "delete orders-x", deleteTopics("orders-x"), topicDenied},
		{"alice", "delete orders-x", deleteTopics("orders-x"), ok},
		{"alice", "delete a topic that does not exist, unauthorized", deleteTopics("ghost"), topicDenied},
		{"alice", "create partitions orders", createPartitions("orders", 2), ok},
		{"bob", "create partitions payments", createPartitions("payments", 2), topicDenied},
		{"bob", "delete records payments", deleteRecords("payments"), topicDenied},
		{"alice", "delete records orders", deleteRecords("orders"), ok},
		// Configs: DESCRIBE_CONFIGS / ALTER_CONFIGS, a broker's on the cluster.
		{"bob", "describe configs payments (implied by ALTER_CONFIGS)", describeConfigs(kmsg.ConfigResourceTypeTopic, "payments"), ok},
		{"alice", "describe configs payments", describeConfigs(kmsg.ConfigResourceTypeTopic, "payments"), topicDenied},
		{"alice", "describe broker configs", describeConfigs(kmsg.ConfigResourceTypeBroker, node), clusterDeny},
		{"admin", "describe broker configs", describeConfigs(kmsg.ConfigResourceTypeBroker, node), ok},
		{"bob", "alter configs payments", alterConfigs("payments"), ok},
		{"alice", "alter configs payments", alterConfigs("payments"), topicDenied},
		// Groups: READ on the group (DESCRIBE for FindCoordinator).
		{"alice", "find coordinator g-alice", findCoordinator(0, "g-alice"), ok},
		{"bob", "find coordinator g-alice", findCoordinator(0, "g-alice"), groupDenied},
		{"alice", "join g-alice", joinGroup("g-alice"), memberIDReq},
		{"bob", "join g-alice", joinGroup("g-alice"), groupDenied},
		{"bob", "describe group g-alice", describeGroups("g-alice"), groupDenied},
		{"alice", "commit g-alice orders", offsetCommit("g-alice", "orders"), ok},
		{"alice", "commit g-alice secret", offsetCommit("g-alice", "secret"), topicDenied},
		{"bob", "commit g-alice orders", offsetCommit("g-alice", "orders"), groupDenied},
		{"alice", "fetch offsets g-alice orders", offsetFetch("g-alice", "orders"), ok},
		{"alice", "fetch offsets g-alice secret", offsetFetch("g-alice", "secret"), topicDenied},
		{"bob", "fetch offsets g-alice", offsetFetch("g-alice", "orders"), groupDenied},
		// Producer ids and transactions.
		{"alice", "init producer id tx-alice-1 (PREFIXED WRITE)", initProducerID(kmsg.StringPtr("tx-alice-1")), ok},
		{"alice", "init producer id tx-bob", initProducerID(kmsg.StringPtr("tx-bob")), txnDenied},
		{"alice", "init idempotent producer (WRITE on a topic)", initProducerID(nil), ok},
		{"bob", "init idempotent producer", initProducerID(nil), clusterDeny},
		{"", "init idempotent producer (anonymous)", initProducerID(nil), clusterDeny},
		{"alice", "find coordinator tx-bob", findCoordinator(1, "tx-bob"), txnDenied},
		{"bob", "end txn tx-alice-1", endTxn("tx-alice-1"), txnDenied},
		{"bob", "add partitions to tx-alice-1", addPartitionsToTxn("tx-alice-1", "orders"), txnDenied},
		{"alice", "add secret to tx-alice-1", addPartitionsToTxn("tx-alice-1", "secret"), topicDenied},
		{"alice", "write txn markers (no CLUSTER_ACTION)", writeTxnMarkers, clusterDeny},
		// The cluster: ACLs, elections.
		{"alice", "describe acls", describeACLs, clusterDeny},
		{"carol", "describe acls (DESCRIBE on the cluster)", describeACLs, ok},
		{"carol", "create acls (no ALTER on the cluster)", createACLs, clusterDeny},
		{"bob", "delete acls", deleteACLs, clusterDeny},
		{"admin", "delete acls matching nothing", deleteACLs, ok},
		{"alice", "elect leaders", electLeaders, clusterDeny},
		{"carol", "describe log dirs (DESCRIBE on the cluster)", describeLogDirs, ok},
		{"alice", "describe log dirs", describeLogDirs, clusterDeny},
		{"", "describe log dirs (anonymous)", describeLogDirs, clusterDeny},
		{"carol", "describe quorum (DESCRIBE on the cluster)", describeQuorum, ok},
		{"alice", "describe quorum", describeQuorum, clusterDeny},
		{"admin", "elect leaders", electLeaders, ok},
		// Users and quotas: DESCRIBE / ALTER, DESCRIBE_CONFIGS /
		// ALTER_CONFIGS on the cluster.
		{"alice", "describe client quotas", describeQuotas, clusterDeny},
		{"admin", "describe client quotas", describeQuotas, ok},
		{"carol", "alter client quotas (DESCRIBE and CREATE only)", alterQuotas, clusterDeny},
		{"admin", "alter client quotas", alterQuotas, ok},
		{"bob", "describe SCRAM users", describeScram, clusterDeny},
		{"carol", "describe SCRAM users (DESCRIBE on the cluster)", describeScram, ok},
		{"carol", "alter SCRAM users (no ALTER)", alterScram, clusterDeny},
		{"admin", "alter SCRAM users", alterScram, ok},
	}
	for _, tc := range cases {
		who := tc.who
		if who == "" {
			who = "ANONYMOUS"
		}
		if got := tc.call(clients[tc.who]); got != tc.want {
			t.Errorf("User:%s %s: %v, want %v", who, tc.what, kerr.ErrorForCode(got), kerr.ErrorForCode(tc.want))
		}
	}

	// Fetch v13+ names topics by id: the id's topic is what is
	// authorized.
	ids := map[string][16]byte{}
	for _, tp := range call[*kmsg.MetadataResponse](t, clients["admin"], kmsg.NewPtrMetadataRequest()).Topics {
		ids[*tp.Topic] = tp.TopicID
	}
	byID := userClient(t, b, "alice")
	for topic, want := range map[string]int16{"orders": ok, "secret": topicDenied} {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = -1, 1, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.TopicID = ids[topic]
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := call[*kmsg.FetchResponse](t, byID, req)
		if resp.Version < 13 {
			t.Fatalf("fetch v%d, want topic ids (v13+)", resp.Version)
		}
		if got := resp.Topics[0].Partitions[0].ErrorCode; got != want {
			t.Errorf("User:alice fetch %s by topic id: %v, want %v", topic, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
		}
	}

	// A listing of every topic shows only what the principal may
	// describe.
	md := call[*kmsg.MetadataResponse](t, clients["alice"], kmsg.NewPtrMetadataRequest())
	var seen []string
	for _, tp := range md.Topics {
		seen = append(seen, *tp.Topic)
	}
	slices.Sort(seen)
	if want := []string{"hosted", "orders", "orders-eu", "public"}; !slices.Equal(seen, want) {
		t.Errorf("alice lists topics %v, want %v", seen, want)
	}
}

// syncWriter is a log sink safe for the broker's goroutines.
type syncWriter struct {
	mu sync.Mutex // guards b
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// The ACL requests as Kafka answers them: SECURITY_DISABLED without an
// authorizer; with one, an invalid binding gets INVALID_REQUEST while the
// valid ones of the same request are created, and a filter with an
// UNKNOWN field INVALID_REQUEST. A denial is logged with who was denied
// what.
func TestACLRequests(t *testing.T) {
	off := testutil.StartBroker(t, broker.Config{})
	req := kmsg.NewPtrCreateACLsRequest()
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, "t", kmsg.ACLResourcePatternTypeLiteral
	c.Principal, c.Host, c.Operation, c.PermissionType = "User:alice", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
	req.Creations = append(req.Creations, c)
	if code := call[*kmsg.CreateACLsResponse](t, newClient(t, off.Addr()), req).Results[0].ErrorCode; code != kerr.SecurityDisabled.Code {
		t.Fatalf("CreateAcls without an authorizer: %v", kerr.ErrorForCode(code))
	}
	desc := kmsg.NewPtrDescribeACLsRequest()
	desc.ResourceType, desc.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	desc.Operation, desc.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	if code := call[*kmsg.DescribeACLsResponse](t, newClient(t, off.Addr()), desc).ErrorCode; code != kerr.SecurityDisabled.Code {
		t.Fatalf("DescribeAcls without an authorizer: %v", kerr.ErrorForCode(code))
	}

	var log syncWriter
	b := aclBroker(t, func(cfg *broker.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
	})
	admin := userClient(t, b, "admin")
	bad := func(edit func(*kmsg.CreateACLsRequestCreation)) kmsg.CreateACLsRequestCreation {
		x := c
		edit(&x)
		return x
	}
	req.Creations = []kmsg.CreateACLsRequestCreation{
		c,
		bad(func(x *kmsg.CreateACLsRequestCreation) { x.ResourceType = kmsg.ACLResourceTypeCluster }),
		bad(func(x *kmsg.CreateACLsRequestCreation) { x.ResourcePatternType = kmsg.ACLResourcePatternTypeMatch }),
		bad(func(x *kmsg.CreateACLsRequestCreation) { x.ResourceName = "" }),
		bad(func(x *kmsg.CreateACLsRequestCreation) { x.Principal = "alice" }),
		bad(func(x *kmsg.CreateACLsRequestCreation) { x.Operation = kmsg.ACLOperationAny }),
		bad(func(x *kmsg.CreateACLsRequestCreation) { x.PermissionType = kmsg.ACLPermissionTypeAny }),
	}
	res := call[*kmsg.CreateACLsResponse](t, admin, req).Results
	for i, r := range res {
		want := kerr.InvalidRequest.Code
		if i == 0 {
			want = 0
		}
		if r.ErrorCode != want {
			t.Errorf("creation %d: %v, want %v", i, kerr.ErrorForCode(r.ErrorCode), kerr.ErrorForCode(want))
		}
	}
	described := call[*kmsg.DescribeACLsResponse](t, admin, desc)
	if len(described.Resources) != 1 || described.Resources[0].ResourceName != "t" || len(described.Resources[0].ACLs) != 1 {
		t.Fatalf("described %+v", described.Resources)
	}
	desc.Operation = kmsg.ACLOperationUnknown
	if code := call[*kmsg.DescribeACLsResponse](t, admin, desc).ErrorCode; code != kerr.InvalidRequest.Code {
		t.Fatalf("DescribeAcls with an UNKNOWN operation: %v", kerr.ErrorForCode(code))
	}
	del := kmsg.NewPtrDeleteACLsRequest()
	f := kmsg.NewDeleteACLsRequestFilter()
	f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	unknown := f
	unknown.PermissionType = kmsg.ACLPermissionTypeUnknown
	del.Filters = []kmsg.DeleteACLsRequestFilter{unknown, f}
	dres := call[*kmsg.DeleteACLsResponse](t, admin, del).Results
	if dres[0].ErrorCode != kerr.InvalidRequest.Code || dres[1].ErrorCode != 0 || len(dres[1].MatchingACLs) != 1 {
		t.Fatalf("DeleteAcls: %+v", dres)
	}

	// A denial is logged.
	if code := metadataCode(t, userClient(t, b, "bob"), "t"); code != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("bob's metadata: %v", kerr.ErrorForCode(code))
	}
	if s := log.String(); !strings.Contains(s, `msg="authorization denied" principal=User:bob host=127.0.0.1 operation=DESCRIBE resource_type=TOPIC resource=t`) {
		t.Fatalf("no denial logged:\n%s", s)
	}
}

func metadataCode(t *testing.T, cl *kgo.Client, topic string) int16 {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	return call[*kmsg.MetadataResponse](t, cl, req).Topics[0].ErrorCode
}
