package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// `runnel users` adds a SCRAM user the broker then authenticates, lists
// it without its password, changes its password and deletes it.
func TestUsersCommand(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{Security: broker.SecurityConfig{
		Listeners: "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
		SASL:      broker.SASLConfig{Mechanisms: []string{broker.MechanismScramSHA256, broker.MechanismScramSHA512}},
	}})
	addr, sasl := b.ListenerAddr("PLAINTEXT"), b.ListenerAddr("SASL_PLAINTEXT")
	login := func(user, pass string) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(sasl), kgo.RequestRetries(0),
			kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(testContext(t), 15*time.Second)
		defer cancel()
		return cl.Ping(ctx)
	}

	out := mustCLI(t, addr, "", "users", "add", "--user", "alice", "--password", "pw-1", "--iterations", "8192")
	if !strings.Contains(out.stdout, "user alice") {
		t.Fatalf("add printed %q", out.stdout)
	}
	if err := login("alice", "pw-1"); err != nil {
		t.Fatalf("login after add: %v", err)
	}
	mustCLI(t, addr, "", "users", "create", "--entity-name", "bob", "--mechanism", "SCRAM-SHA-512", "--password", "bob-pw")
	out = mustCLI(t, addr, "", "users", "list")
	want := "User   Mechanism      Iterations\nalice  SCRAM-SHA-256  8192\nalice  SCRAM-SHA-512  8192\nbob    SCRAM-SHA-512  4096\n"
	if out.stdout != want {
		t.Fatalf("list printed\n%s\nwant\n%s", out.stdout, want)
	}

	// A new password from standard input: the old one is refused.
	mustCLI(t, addr, "pw-2\n", "users", "add", "--user", "alice", "--password", "-")
	if err := login("alice", "pw-1"); err == nil {
		t.Fatal("the old password still authenticates")
	}
	if err := login("alice", "pw-2"); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}

	mustCLI(t, addr, "", "users", "delete", "--user", "alice")
	if err := login("alice", "pw-2"); err == nil {
		t.Fatal("a deleted user authenticates")
	}
	if out := mustCLI(t, addr, "", "users", "list"); out.stdout != "User  Mechanism      Iterations\nbob   SCRAM-SHA-512  4096\n" {
		t.Fatalf("list after delete printed %q", out.stdout)
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"users", "add", "--password", "x"}, exitUsage, "missing --user"},
		{[]string{"users", "add", "--user", "x"}, exitUsage, "missing --password"},
		{[]string{"users", "add", "--user", "x", "--password", "y", "--mechanism", "MD5"}, exitUsage, "--mechanism"},
		{[]string{"users", "add", "--user", "x", "--password", "y", "--iterations", "100"}, exitUsage, "--iterations"},
		{[]string{"users", "delete", "--user", "nobody"}, exitFailure, "RESOURCE_NOT_FOUND"},
		{[]string{"users", "delete", "--user", "nobody", "--mechanism", "SCRAM-SHA-256"}, exitFailure, "does not exist"},
		{[]string{"users", "list", "--user", "nobody"}, exitFailure, "no SCRAM credentials"},
		{[]string{"users", "frob"}, exitUsage, "unknown subcommand"},
	} {
		r := cli(t, addr, "", tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("runnel %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.code, tc.msg)
		}
	}
}
