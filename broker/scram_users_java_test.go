package broker_test

import (
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Apache Kafka's kafka-configs (ConfigCommand), over SASL_SSL, manages
// SCRAM users and client quotas on the broker: a user it creates authenticates with
// franz-go, it describes the user and the quotas it set, and a user it
// deletes no longer authenticates. Five JVM launches.
func TestInteropKafkaConfigsUsersAndQuotas(t *testing.T) {
	_, tool := kafkaHome(t)
	ca := testutil.NewCA(t, "test-ca")
	certFile, keyFile := ca.Issue(t, "broker", pkix.Name{CommonName: "broker"})
	b := testutil.StartBroker(t, broker.Config{Security: broker.SecurityConfig{
		Listeners: "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
		TLS:       broker.TLSConfig{CertFile: certFile, KeyFile: keyFile},
		SASL:      broker.SASLConfig{Mechanisms: []string{broker.MechanismScramSHA512}, Users: map[string]string{"admin": "admin-secret"}},
	}})
	addr, sasl := b.ListenerAddr("PLAINTEXT"), b.ListenerAddr("SASL_PLAINTEXT")
	// kafka-configs connects over SASL_SSL as admin, a user of the
	// users file.
	props := adminSASLSSLProperties(t, ca.CertFile)
	ctx := testContext(t)
	configs := func(args ...string) string {
		return javaTool(t, ctx, tool, "", "kafka.admin.ConfigCommand",
			append([]string{"--bootstrap-server", b.ListenerAddr("SASL_SSL"), "--command-config", props}, args...)...)
	}

	configs("--alter", "--add-config", "SCRAM-SHA-512=[iterations=8192,password=java-secret]", "--entity-type", "users", "--entity-name", "javauser")
	if err := scramPing(t, sasl, "javauser", "java-secret", true); err != nil {
		t.Fatalf("a user kafka-configs created: %v", err)
	}
	if out := configs("--describe", "--entity-type", "users", "--entity-name", "javauser"); !strings.Contains(out, "SCRAM-SHA-512=iterations=8192") {
		t.Fatalf("kafka-configs --describe of the user printed:\n%s", out)
	}

	configs("--alter", "--add-config", "producer_byte_rate=1048576,consumer_byte_rate=2097152", "--entity-type", "clients", "--entity-default")
	quotas, err := kadm.NewClient(newClient(t, addr)).DescribeClientQuotas(ctx, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(quotas) != 1 || quotas[0].Entity.String() != "{client-id=<default>}" || len(quotas[0].Values) != 2 {
		t.Fatalf("quotas after kafka-configs: %+v", quotas)
	}
	if out := configs("--describe", "--entity-type", "clients", "--entity-default"); !strings.Contains(out, "producer_byte_rate=1048576") {
		t.Fatalf("kafka-configs --describe of the default client printed:\n%s", out)
	}

	configs("--alter", "--delete-config", "SCRAM-SHA-512", "--entity-type", "users", "--entity-name", "javauser")
	if err := scramPing(t, sasl, "javauser", "java-secret", true); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("a user kafka-configs deleted: %v", err)
	}
}

// adminSASLSSLProperties writes the client properties file Kafka's tools
// take with --command-config: SASL_SSL with SCRAM-SHA-512 as admin (password
// admin-secret), trusting the PEM CA in caFile. It returns its path.
func adminSASLSSLProperties(t *testing.T, caFile string) string {
	t.Helper()
	props := filepath.Join(t.TempDir(), "admin.properties")
	conf := strings.Join([]string{
		"security.protocol=SASL_SSL",
		"sasl.mechanism=SCRAM-SHA-512",
		`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="admin-secret";`,
		"ssl.truststore.type=PEM",
		"ssl.truststore.location=" + caFile,
	}, "\n") + "\n"
	if err := os.WriteFile(props, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return props
}
