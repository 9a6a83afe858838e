package main

import (
	"context"
	"crypto/x509/pkix"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/freeport"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// `runnel broker` takes the inter-broker and controller security flags:
// a one-node quorum whose only listener is SASL_SSL, named the
// inter-broker listener, with the broker's credentials from a file and
// the controller listener on mutual TLS, which a plaintext connection
// gets no answer from. An inter-broker listener that is not a listener
// stops the start with Kafka's name for the setting.
func TestBrokerInterBrokerFlags(t *testing.T) {
	r := cli(t, "", "", "broker", "--data-dir", t.TempDir(), "--listeners", "SASL_SSL://127.0.0.1:0", "--inter-broker-listener-name", "REPLICATION")
	if r.code == 0 || !strings.Contains(r.stderr, "inter.broker.listener.name REPLICATION is not among the listeners") {
		t.Fatalf("unknown inter-broker listener: exit %d, stderr %q", r.code, r.stderr)
	}

	ca := testutil.NewCA(t, "test-ca")
	certFile, keyFile := ca.Issue(t, "broker", pkix.Name{CommonName: "broker"})
	dir := t.TempDir()
	users, password := filepath.Join(dir, "users"), filepath.Join(dir, "password")
	if err := os.WriteFile(users, []byte("broker=broker-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(password, []byte("broker-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs, err := freeport.Addrs(1)
	if err != nil {
		t.Fatal(err)
	}
	ctl := addrs[0]
	ctx, stop := context.WithCancel(testContext(t))
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"broker", "--data-dir", t.TempDir(), "--node-id", "1", "--controller-quorum", "1@" + ctl,
			"--listeners", "SASL_SSL://127.0.0.1:0", "--inter-broker-listener-name", "sasl_ssl",
			"--ssl-cert-file", certFile, "--ssl-key-file", keyFile, "--ssl-ca-file", ca.CertFile,
			"--sasl-users-file", users, "--sasl-mechanism-inter-broker-protocol", "SCRAM-SHA-256",
			"--inter-broker-sasl-username", "broker", "--inter-broker-sasl-password-file", password,
			"--controller-tls", "--log-level", "warn"},
			env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	defer func() { stop(); <-done }()
	if !stdout.waitFor(testContext(t), func(s string) bool { return strings.Count(s, "\n") == 2 }) {
		t.Fatalf("broker printed %q; stderr %q", stdout.String(), stderr.String())
	}
	nc, err := net.Dial("tcp", ctl)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	body := []byte(`{"kind":"quorum"}`)
	if _, err := nc.Write(append(binary.BigEndian.AppendUint32([]byte{'f'}, uint32(len(body))), body...)); err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadFull(nc, make([]byte, 4)); err == nil {
		t.Fatalf("a plaintext call to the TLS controller listener was answered (%d bytes)", n)
	}
}
