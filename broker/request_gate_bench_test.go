package broker

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// BenchmarkProduceRequestGate measures what the broker does around a
// Produce handler's append for security and quotas, once per request:
// the reader's throttle check, the authorizer's WRITE checks of the
// transactional id and the topic, and the quota bookkeeping (timing the
// handler, the producer_byte_rate and request_percentage rates). The
// handler itself is replaced by those checks alone, so that the figure is
// the per-request cost a Produce pays on top of its append.
//
//	go test ./broker -run '^$' -bench ProduceRequestGate -benchmem
//
// Cases: the default broker (no authorizer, no quota); an authorizer with
// 100 bindings on other topics and one prefixed ALLOW for the topic;
// quotas set for other users and client ids only (every request resolves
// to none); a producer_byte_rate quota on the connection's own user, never
// exceeded.
func BenchmarkProduceRequestGate(b *testing.B) {
	for _, tc := range []struct {
		name    string
		authz   bool
		quotas  []meta.QuotaAlteration
		txnlIDs bool
	}{
		{name: "default"},
		{name: "authorizer", authz: true},
		{name: "quotas-others", quotas: []meta.QuotaAlteration{
			{Entity: meta.QuotaEntity{User: meta.Named("bob")}, Set: map[string]float64{quotaProducerByteRate: 1e6}},
			{Entity: meta.QuotaEntity{ClientID: meta.Named("other")}, Set: map[string]float64{quotaRequestPercentage: 50}},
		}},
		{name: "quotas-own", quotas: []meta.QuotaAlteration{
			{Entity: meta.QuotaEntity{User: meta.Named("alice")}, Set: map[string]float64{quotaProducerByteRate: 1e15}},
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c, req := gateBenchConn(b, tc.authz, tc.quotas)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := c.waitMuted(); err != nil {
					b.Fatal(err)
				}
				fin, err := c.handleMetered(req, 1<<20, gateBenchHandler)
				if err != nil || fin == nil {
					b.Fatalf("handleMetered: %v, finisher %v", err, fin != nil)
				}
			}
			if d := c.mutedUntil.Load(); d != 0 {
				b.Fatalf("the connection was throttled (muted until %d): the benchmark measures an unthrottled producer", d)
			}
		})
	}
}

// gateBenchHandler does a Produce handler's security checks for one topic
// and answers with a finisher, as an acks=all produce does.
func gateBenchHandler(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.ProduceRequest)
	if r.TransactionID != nil && !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, *r.TransactionID) {
		return nil, fmt.Errorf("transactional id denied")
	}
	for _, t := range r.Topics {
		if !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, t.Topic) {
			return nil, fmt.Errorf("topic %s denied", t.Topic)
		}
	}
	return gateBenchFinisher, nil
}

func gateBenchFinisher(context.Context) kmsg.Response { return nil }

// gateBenchConn starts a broker with the given authorizer and quotas and
// returns a connection of User:alice (client id "app") on it, not backed
// by a socket, and a Produce request of one topic.
func gateBenchConn(b *testing.B, authz bool, quotas []meta.QuotaAlteration) (*conn, *request) {
	b.Helper()
	ctx := context.Background()
	br, err := Start(ctx, Config{DataDir: b.TempDir(), Listen: "127.0.0.1:0", OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	if authz {
		var acls []meta.ACL
		for i := range 100 {
			acls = append(acls, meta.ACL{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: fmt.Sprintf("other-%d", i),
				PatternType: kmsg.ACLResourcePatternTypeLiteral, Principal: "User:bob", Host: "*",
				Operation: kmsg.ACLOperationWrite, Permission: kmsg.ACLPermissionTypeAllow})
		}
		acls = append(acls, meta.ACL{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: "bench",
			PatternType: kmsg.ACLResourcePatternTypePrefixed, Principal: "User:alice", Host: "*",
			Operation: kmsg.ACLOperationWrite, Permission: kmsg.ACLPermissionTypeAllow})
		if err := br.meta.CreateACLs(ctx, acls); err != nil {
			b.Fatal(err)
		}
		br.authz = newAuthorizer(AuthorizerConfig{Enabled: true}, func() *meta.ACLSet { return br.meta.Cluster().ACLs }, slog.New(slog.DiscardHandler))
	}
	if err := br.meta.AlterQuotas(ctx, quotas); err != nil {
		b.Fatal(err)
	}
	c := &conn{b: br, ctx: ctx}
	c.sec.principal = "User:alice"
	c.sec.host = "127.0.0.1"
	r := kmsg.NewPtrProduceRequest()
	r.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "bench-1KiB"
	rt.Partitions = []kmsg.ProduceRequestTopicPartition{{Partition: 0}}
	r.Topics = append(r.Topics, rt)
	return c, &request{key: 0, version: 9, clientID: "app", kreq: r}
}
