package main

import (
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// runnel acls against a broker with the authorizer on: the super user
// adds, lists and removes ACLs with kafka-acls' flags, and what it grants
// is what the other user may then do; a user without ALTER on the cluster
// is refused.
func TestACLsCommand(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{Security: broker.SecurityConfig{
		Listeners:  "SASL_PLAINTEXT://127.0.0.1:0",
		SASL:       broker.SASLConfig{Users: map[string]string{"admin": "admin-secret", "alice": "alice-secret"}},
		Authorizer: broker.AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:admin"}},
	}})
	addr := b.ListenerAddr("SASL_PLAINTEXT")
	props := func(user string) string {
		return writeProps(t, "bootstrap.servers="+addr, "security.protocol=SASL_PLAINTEXT", "sasl.mechanism=PLAIN",
			"sasl.username="+user, "sasl.password="+user+"-secret")
	}
	admin, alice := props("admin"), props("alice")
	mustCLI(t, "", "", "topics", "create", "orders", "--command-config", admin)
	mustCLI(t, "", "", "topics", "create", "payments", "--command-config", admin)

	// Without ACLs alice sees no topic.
	if r := mustCLI(t, "", "", "topics", "list", "--command-config", alice); r.stdout != "" {
		t.Fatalf("alice lists %q before any ACL", r.stdout)
	}
	r := mustCLI(t, "", "", "acls", "add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Describe",
		"--topic", "ord", "--resource-pattern-type", "prefixed", "--command-config", admin)
	if strings.Count(r.stdout, "added ") != 2 || !strings.Contains(r.stdout, "operation=READ, permissionType=ALLOW) on ResourcePattern(resourceType=TOPIC, name=ord, patternType=PREFIXED)") {
		t.Fatalf("acls add printed %q", r.stdout)
	}
	mustCLI(t, "", "", "acls", "add", "--deny-principal", "User:alice", "--operation", "All", "--topic", "payments", "--command-config", admin)
	if r := mustCLI(t, "", "", "topics", "list", "--command-config", alice); r.stdout != "orders\n" {
		t.Fatalf("alice lists %q, want orders", r.stdout)
	}

	r = mustCLI(t, "", "", "acls", "list", "--command-config", admin)
	for _, want := range []string{
		"Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=ord, patternType=PREFIXED)`:",
		"(principal=User:alice, host=*, operation=DESCRIBE, permissionType=ALLOW)",
		"Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=payments, patternType=LITERAL)`:",
		"(principal=User:alice, host=*, operation=ALL, permissionType=DENY)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("acls list printed %q, missing %q", r.stdout, want)
		}
	}
	// MATCH lists what applies to a name: the prefix covers orders.
	r = mustCLI(t, "", "", "acls", "list", "--topic", "orders", "--resource-pattern-type", "match", "--command-config", admin)
	if !strings.Contains(r.stdout, "name=ord, patternType=PREFIXED") || strings.Contains(r.stdout, "payments") {
		t.Fatalf("acls list --topic orders (match) printed %q", r.stdout)
	}

	// A delegation token is a resource too, as in kafka-acls.
	r = mustCLI(t, "", "", "acls", "add", "--allow-principal", "User:alice", "--operation", "Describe", "--delegation-token", "token-1", "--command-config", admin)
	if !strings.Contains(r.stdout, "on ResourcePattern(resourceType=DELEGATION_TOKEN, name=token-1, patternType=LITERAL)") {
		t.Fatalf("acls add --delegation-token printed %q", r.stdout)
	}
	r = mustCLI(t, "", "", "acls", "list", "--delegation-token", "token-1", "--command-config", admin)
	if !strings.Contains(r.stdout, "(principal=User:alice, host=*, operation=DESCRIBE, permissionType=ALLOW)") || strings.Contains(r.stdout, "TOPIC") {
		t.Fatalf("acls list --delegation-token printed %q", r.stdout)
	}

	// alice may not manage ACLs.
	if r := cli(t, "", "", "acls", "list", "--command-config", alice); r.code != 1 || !strings.Contains(r.stderr, "CLUSTER_AUTHORIZATION_FAILED") {
		t.Fatalf("alice's acls list: exit %d stderr %q", r.code, r.stderr)
	}

	r = mustCLI(t, "", "", "acls", "remove", "--topic", "ord", "--resource-pattern-type", "prefixed", "--operation", "Read", "--command-config", admin)
	if strings.Count(r.stdout, "removed ") != 1 {
		t.Fatalf("acls remove printed %q", r.stdout)
	}
	r = mustCLI(t, "", "", "acls", "list", "--topic", "ord", "--resource-pattern-type", "prefixed", "--command-config", admin)
	if strings.Contains(r.stdout, "operation=READ") || !strings.Contains(r.stdout, "operation=DESCRIBE") {
		t.Fatalf("after remove, acls list printed %q", r.stdout)
	}

	// Usage errors.
	for _, args := range [][]string{
		{"acls", "add", "--topic", "t", "--operation", "Read"},
		{"acls", "add", "--allow-principal", "alice", "--topic", "t", "--operation", "Read"},
		{"acls", "add", "--allow-principal", "User:alice", "--topic", "t", "--operation", "Fly"},
		{"acls", "add", "--allow-principal", "User:alice", "--topic", "t", "--operation", "Read", "--resource-pattern-type", "match"},
		{"acls", "remove", "--allow-principal", "User:alice"},
		{"acls", "add", "--allow-principal", "User:alice", "--group", "g", "--operation", "Write"},
		{"acls", "add", "--allow-principal", "User:alice", "--delegation-token", "t", "--operation", "Write"},
		{"acls", "frob"},
	} {
		if r := cli(t, "", "", append(args, "--command-config", admin)...); r.code != 2 {
			t.Errorf("runnel %s: exit %d, want 2 (stderr %q)", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}
