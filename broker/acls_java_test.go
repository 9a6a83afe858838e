package broker_test

import (
	"crypto/x509/pkix"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestKafkaACLCommand runs Apache Kafka's kafka-acls tool
// (org.apache.kafka.tools.AclCommand) against the broker over SASL_SSL
// with SCRAM-SHA-512, as the super user: it adds a prefixed ALLOW
// and a literal DENY, lists them, and removes one; what remains is what
// DescribeAcls shows. Four JVM launches.
func TestKafkaACLCommand(t *testing.T) {
	_, tool := kafkaHome(t)
	ca := testutil.NewCA(t, "test-ca")
	certFile, keyFile := ca.Issue(t, "broker", pkix.Name{CommonName: "broker"})
	b := aclBroker(t, func(cfg *broker.Config) {
		cfg.Security.Listeners += ",SASL_SSL://127.0.0.1:0"
		cfg.Security.TLS = broker.TLSConfig{CertFile: certFile, KeyFile: keyFile}
		cfg.Security.SASL.Mechanisms = []string{broker.MechanismScramSHA512}
	})
	addr := b.ListenerAddr("SASL_SSL")
	props := adminSASLSSLProperties(t, ca.CertFile)
	ctx := testContext(t)
	const ac = "org.apache.kafka.tools.AclCommand"
	base := []string{"--bootstrap-server", addr, "--command-config", props}

	out := javaTool(t, ctx, tool, "", ac, append(base, "--add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Write",
		"--topic", "orders", "--resource-pattern-type", "prefixed")...)
	if !strings.Contains(out, "Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, patternType=PREFIXED)`") {
		t.Errorf("AclCommand --add printed:\n%s", out)
	}
	javaTool(t, ctx, tool, "", ac, append(base, "--add", "--deny-principal", "User:bob", "--deny-host", "10.0.0.1", "--operation", "All", "--topic", "orders-eu", "--group", "g-alice")...)

	out = javaTool(t, ctx, tool, "", ac, append(base, "--list", "--topic", "orders-eu", "--resource-pattern-type", "match")...)
	for _, want := range []string{
		"Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, patternType=PREFIXED)`",
		"(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)",
		"Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders-eu, patternType=LITERAL)`",
		"(principal=User:bob, host=10.0.0.1, operation=ALL, permissionType=DENY)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("AclCommand --list missing %q:\n%s", want, out)
		}
	}

	javaTool(t, ctx, tool, "", ac, append(base, "--remove", "--force", "--allow-principal", "User:alice", "--operation", "Write",
		"--topic", "orders", "--resource-pattern-type", "prefixed")...)

	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	resp := call[*kmsg.DescribeACLsResponse](t, newClient(t, b.ListenerAddr("SASL_PLAINTEXT"), kgo.SASL(scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha512Mechanism())), req)
	var got []string
	for _, r := range resp.Resources {
		for _, a := range r.ACLs {
			got = append(got, strings.Join([]string{r.ResourceType.String(), r.ResourceName, r.ResourcePatternType.String(),
				a.Principal, a.Operation.String(), a.PermissionType.String()}, ":"))
		}
	}
	want := []string{
		"TOPIC:orders:PREFIXED:User:alice:READ:ALLOW",
		"TOPIC:orders-eu:LITERAL:User:bob:ALL:DENY",
		"GROUP:g-alice:LITERAL:User:bob:ALL:DENY",
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("after kafka-acls: %v, missing %s", got, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("after kafka-acls: %v, want %v", got, want)
	}
}
