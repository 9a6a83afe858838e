package broker_test

import (
	"context"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Clients other than franz-go over the secured listeners: kcat
// (librdkafka) and Apache Kafka's Java tools, with SCRAM over TLS and with
// a client certificate, each configured as their users configure them.

// kcatSecurity are kcat's -X properties for each secured way in.
func kcatSecurity(ca *testutil.CA, mechanism, user, pass, certFile, keyFile string) []string {
	if mechanism == "" {
		return []string{"-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + ca.CertFile,
			"-X", "ssl.certificate.location=" + certFile, "-X", "ssl.key.location=" + keyFile}
	}
	return []string{"-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location=" + ca.CertFile,
		"-X", "sasl.mechanisms=" + mechanism, "-X", "sasl.username=" + user, "-X", "sasl.password=" + pass}
}

// TestKcatSecured produces and consumes with kcat over SASL_SSL with
// SCRAM-SHA-256 and SCRAM-SHA-512, over mutual TLS, and over
// SASL_PLAINTEXT with PLAIN; a wrong password is refused with an
// authentication error. librdkafka needed two things of the broker: a
// SaslHandshake range that includes v0 (sasl_v0.go), and SCRAM accepting
// its client-final nonce, which repeats the client's nonce before the
// server's.
func TestKcatSecured(t *testing.T) {
	bin := kcat(t)
	ca := testutil.NewCA(t, "test-ca")
	b := secureBroker(t, ca, func(c *broker.Config) { c.Security.TLS.ClientAuth = "requested" })
	clientCert, clientKey := ca.Issue(t, "kcat-client", pkix.Name{CommonName: "kcat"})
	cases := []struct {
		name, listener string
		props          []string
	}{
		{"sasl_ssl scram-sha-256", "SASL_SSL", kcatSecurity(ca, "SCRAM-SHA-256", "alice", "alice-secret", "", "")},
		{"sasl_ssl scram-sha-512", "SASL_SSL", kcatSecurity(ca, "SCRAM-SHA-512", "bob", "bob-secret", "", "")},
		{"mtls", "SSL", kcatSecurity(ca, "", "", "", clientCert, clientKey)},
		{"sasl_plaintext plain", "SASL_PLAINTEXT", []string{"-X", "security.protocol=SASL_PLAINTEXT",
			"-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=alice", "-X", "sasl.password=alice-secret"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := b.ListenerAddr(tc.listener)
			topic := fmt.Sprintf("kcat-secured-%d", i)
			createTopic(t, newAdmin(t, b.Addr()), topic, 2, nil)
			want := textRecords(8, 2, "kcat")
			// kcat -P takes one partition per run: produce each
			// partition's lines with -p.
			for p := range int32(2) {
				var lines strings.Builder
				for _, r := range want {
					if r.Partition == p {
						fmt.Fprintf(&lines, "%s\t%s\n", r.Key, r.Value)
					}
				}
				args := append([]string{"-P", "-b", addr, "-t", topic, "-p", fmt.Sprint(p), "-K", "\t", "-H", "origin=kcat"}, tc.props...)
				runPeer(t, testContext(t), lines.String(), bin, args...)
			}
			out := runToEnd(t, bin, append([]string{"-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-J"}, tc.props...)...)
			got := parseKcatJSON(t, out)
			checkRecords(t, want, got)
			// franz-go over PLAINTEXT reads the same records.
			checkRecords(t, got, consumeKgo(t, b.Addr(), topic, len(want)))
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		args := append([]string{"-L", "-b", b.ListenerAddr("SASL_SSL"), "-m", "10"},
			kcatSecurity(ca, "SCRAM-SHA-256", "alice", "not-her-secret", "", "")...)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err == nil {
			t.Fatalf("kcat -L with a wrong password succeeded:\n%s", out)
		}
		if !strings.Contains(strings.ToLower(string(out)), "authentication") {
			t.Fatalf("kcat -L with a wrong password: %v, without an authentication error:\n%s", err, out)
		}
	})
}

// TestJavaToolsSecured runs Apache Kafka's TopicCommand, ConsoleProducer
// and ConsoleConsumer over SASL_SSL with SCRAM-SHA-512, configured by a
// client properties file (a PEM trust store and a JAAS line) as Kafka's
// users write them.
func TestJavaToolsSecured(t *testing.T) {
	_, tool := kafkaHome(t)
	ca := testutil.NewCA(t, "test-ca")
	b := secureBroker(t, ca, nil)
	addr := b.ListenerAddr("SASL_SSL")
	props := filepath.Join(t.TempDir(), "client.properties")
	conf := strings.Join([]string{
		"security.protocol=SASL_SSL",
		"sasl.mechanism=SCRAM-SHA-512",
		`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="bob" password="bob-secret";`,
		"ssl.truststore.type=PEM",
		"ssl.truststore.location=" + ca.CertFile,
		"ssl.endpoint.identification.algorithm=https",
	}, "\n") + "\n"
	if err := os.WriteFile(props, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	const topic = "java-secured"
	javaTool(t, ctx, tool, "", "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", addr, "--command-config", props,
		"--create", "--topic", topic, "--partitions", "1", "--replication-factor", "1")
	desc := javaTool(t, ctx, tool, "", "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", addr, "--command-config", props,
		"--describe", "--topic", topic)
	if !strings.Contains(desc, "Topic: "+topic+"\t") {
		t.Fatalf("TopicCommand --describe over SASL_SSL:\n%s", desc)
	}

	want := textRecords(6, 1, "java-secured")
	var in strings.Builder
	for _, r := range want {
		fmt.Fprintf(&in, "%s\t%s\n", r.Key, r.Value)
	}
	javaTool(t, ctx, tool, in.String(), "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", addr,
		"--command-config", props, "--topic", topic, "--reader-property", "parse.key=true", "--command-property", "acks=all")
	out := javaTool(t, ctx, tool, "", "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", addr,
		"--command-config", props, "--topic", topic, "--from-beginning", "--max-messages", fmt.Sprint(len(want)),
		"--formatter-property", "print.key=true", "--timeout-ms", "30000")
	for _, r := range want {
		if !strings.Contains(out, fmt.Sprintf("%s\t%s\n", r.Key, r.Value)) {
			t.Errorf("ConsoleConsumer over SASL_SSL did not print %s\t%s; printed:\n%s", r.Key, r.Value, out)
		}
	}
	// franz-go with the same user reads what the Java producer wrote.
	got := consumeAll(t, addr, topic, len(want), kgo.DialTLSConfig(ca.ClientTLS(t, "", "")),
		kgo.SASL(scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism()))
	if len(got) != len(want) {
		t.Fatalf("franz-go read %d records, want %d", len(got), len(want))
	}
}

// TestOAuthBearerPeersUnsecured: librdkafka (kcat) and the Java client
// authenticate with OAUTHBEARER using their built-in unsecured tokens
// (alg none, a sub claim, an expiry), which a broker with unsecured
// validation accepts.
func TestOAuthBearerPeersUnsecured(t *testing.T) {
	bin := kcat(t)
	_, tool := kafkaHome(t)
	b := testutil.StartBroker(t, broker.Config{Security: broker.SecurityConfig{
		Listeners: "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
		SASL: broker.SASLConfig{Mechanisms: []string{broker.MechanismOAuthBearer},
			OAuthBearer: broker.OAuthBearerConfig{Unsecured: true}},
	}})
	addr := b.ListenerAddr("SASL_PLAINTEXT")
	const topic = "oauth-peers"
	createTopic(t, newAdmin(t, b.Addr()), topic, 1, nil)
	props := []string{"-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=OAUTHBEARER",
		"-X", "enable.sasl.oauthbearer.unsecure.jwt=true", "-X", "sasl.oauthbearer.config=principal=alice"}
	runPeer(t, testContext(t), "k\tfrom kcat\n", bin, append([]string{"-P", "-b", addr, "-t", topic, "-K", "\t"}, props...)...)
	out := runToEnd(t, bin, append([]string{"-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-J"}, props...)...)
	if got := parseKcatJSON(t, out); len(got) != 1 || string(got[0].Value) != "from kcat" {
		t.Fatalf("kcat read back %v", got)
	}

	conf := filepath.Join(t.TempDir(), "client.properties")
	if err := os.WriteFile(conf, []byte("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\n"+
		`sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="bob";`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	list := javaTool(t, testContext(t), tool, "", "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", addr,
		"--command-config", conf, "--list")
	if !strings.Contains(list, topic) {
		t.Fatalf("TopicCommand --list over OAUTHBEARER:\n%s", list)
	}
}
