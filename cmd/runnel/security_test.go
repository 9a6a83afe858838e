package main

import (
	"context"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// writeProps writes a client properties file and returns its path.
func writeProps(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "client.properties")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSecureBrokerCommand runs `runnel broker` with SSL, SASL_SSL and
// SASL_PLAINTEXT listeners from its flags, and client commands that reach
// it with a --command-config of Kafka's security properties; a wrong
// password or a missing trust store fails with a clear error.
func TestSecureBrokerCommand(t *testing.T) {
	ca := testutil.NewCA(t, "test-ca")
	certFile, keyFile := ca.Issue(t, "broker", pkix.Name{CommonName: "broker"})
	clientCert, clientKey := ca.Issue(t, "client", pkix.Name{CommonName: "cli"})
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("# SASL users\nalice=alice-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(testContext(t))
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"broker", "--data-dir", t.TempDir(),
			"--listeners", "SSL://127.0.0.1:0,SASL_SSL://127.0.0.1:0,INTERNAL://127.0.0.1:0",
			"--listener-security-protocol-map", "INTERNAL:SASL_PLAINTEXT",
			"--ssl-cert-file", certFile, "--ssl-key-file", keyFile, "--ssl-ca-file", ca.CertFile, "--ssl-client-auth", "requested",
			"--sasl-users-file", users, "--sasl-enabled-mechanisms", "PLAIN,SCRAM-SHA-512", "--log-level", "warn"},
			env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	if !stdout.waitFor(testContext(t), func(s string) bool { return strings.Count(s, "\n") == 4 }) {
		t.Fatalf("broker printed %q; stderr %q", stdout.String(), stderr.String())
	}
	addrs := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^runnel broker listener (\w+) on (\S+)$`).FindAllStringSubmatch(stdout.String(), -1) {
		addrs[m[1]] = m[2]
	}
	if len(addrs) != 3 {
		t.Fatalf("broker printed %q", stdout.String())
	}

	cases := []struct {
		name, listener string
		props          []string
	}{
		{"ssl", "SSL", []string{"security.protocol=SSL", "ssl.truststore.type=PEM", "ssl.truststore.location=" + ca.CertFile}},
		{"mtls", "SSL", []string{"security.protocol=SSL", "ssl.truststore.location=" + ca.CertFile, "ssl.keystore.location=" + clientCert, "ssl.key.location=" + clientKey}},
		{"sasl_ssl scram jaas", "SASL_SSL", []string{"security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-512", "ssl.truststore.location=" + ca.CertFile,
			`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="alice-secret";`}},
		{"sasl_plaintext plain", "INTERNAL", []string{"security.protocol=SASL_PLAINTEXT", "sasl.mechanism=PLAIN", "sasl.username=alice", "sasl.password=alice-secret"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			props := writeProps(t, append([]string{"bootstrap.servers=" + addrs[tc.listener]}, tc.props...)...)
			topic := "secure-" + string(rune('a'+i))
			if r := runEnv(t, nil, "topics", "create", topic, "--command-config", props); r.code != 0 {
				t.Fatalf("topics create: exit %d stderr %q", r.code, r.stderr)
			}
			if r := runEnv(t, nil, "topics", "list", "--command-config", props); r.code != 0 || !strings.Contains(r.stdout, topic+"\n") {
				t.Fatalf("topics list: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}

	refusals := []struct {
		name, listener, want string
		props                []string
	}{
		{"wrong password", "SASL_SSL", "SASL_AUTHENTICATION_FAILED", []string{"security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-512",
			"ssl.truststore.location=" + ca.CertFile, "sasl.username=alice", "sasl.password=wrong"}},
		{"no trust store", "SSL", "certificate", []string{"security.protocol=SSL"}},
		{"sasl without a user", "SASL_SSL", "needs a user and password", []string{"security.protocol=SASL_SSL"}},
		{"unknown protocol", "SSL", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", []string{"security.protocol=TLS"}},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			props := writeProps(t, append([]string{"bootstrap.servers=" + addrs[tc.listener]}, tc.props...)...)
			r := runEnv(t, nil, "topics", "list", "--command-config", props)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d stderr %q, want it to mention %q", r.code, r.stderr, tc.want)
			}
		})
	}

	stop()
	if code := <-done; code != 0 {
		t.Fatalf("broker exited %d; stderr:\n%s", code, stderr.String())
	}
}
