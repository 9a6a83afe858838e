package main

import (
	"regexp"
	"strings"
	"testing"
)

func TestTopicsLifecycle(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()

	r := mustCLI(t, addr, "", "topics", "create", "orders", "--partitions", "3", "--replication-factor", "1", "--config", "retention.ms=60000", "--config", "cleanup.policy=delete")
	if want := "created topic orders with 3 partitions, replication factor 1\n"; r.stdout != want {
		t.Fatalf("create printed %q, want %q", r.stdout, want)
	}
	r = mustCLI(t, addr, "", "topics", "create", "payments")
	if want := "created topic payments with 1 partitions, replication factor 1\n"; r.stdout != want {
		t.Fatalf("create with broker defaults printed %q, want %q", r.stdout, want)
	}

	r = cli(t, addr, "", "topics", "create", "orders", "--partitions", "3")
	if r.code != exitFailure || !strings.Contains(r.stderr, "TOPIC_ALREADY_EXISTS") {
		t.Fatalf("creating an existing topic: exit %d, stderr %q; want exit 1 and TOPIC_ALREADY_EXISTS", r.code, r.stderr)
	}
	r = cli(t, addr, "", "topics", "create", "bad", "--config", "retention.ms=soon")
	if r.code != exitFailure || !strings.Contains(r.stderr, "INVALID_CONFIG") {
		t.Fatalf("creating with a bad config: exit %d, stderr %q; want exit 1 and INVALID_CONFIG", r.code, r.stderr)
	}

	r = mustCLI(t, addr, "", "topics", "list")
	if want := "orders\npayments\n"; r.stdout != want {
		t.Fatalf("list printed %q, want %q", r.stdout, want)
	}

	// Records in partition 1 show in the end offsets.
	mustCLI(t, addr, "a\nb\n", "produce", "orders", "--partition", "1")
	r = mustCLI(t, addr, "", "topics", "describe", "orders")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("describe printed %d lines, want 6:\n%s", len(lines), r.stdout)
	}
	if !regexp.MustCompile(`^Topic: orders\tID: [A-Za-z0-9_-]{22}\tPartitions: 3\tReplicationFactor: 1$`).MatchString(lines[0]) {
		t.Fatalf("describe header %q", lines[0])
	}
	if want := "Configs: cleanup.policy=delete,retention.ms=60000"; lines[1] != want {
		t.Fatalf("describe configs %q, want %q", lines[1], want)
	}
	fields := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for i, want := range []string{
		"Partition Leader Epoch Replicas ISR StartOffset EndOffset",
		"0 0 0 0 0 0 0",
		"1 0 0 0 0 0 2",
		"2 0 0 0 0 0 0",
	} {
		if got := fields(lines[2+i]); got != want {
			t.Fatalf("describe line %d: %q, want %q\n%s", 2+i, got, want, r.stdout)
		}
	}

	r = cli(t, addr, "", "topics", "describe", "nosuch")
	if r.code != exitFailure || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("describing a missing topic: exit %d, stderr %q", r.code, r.stderr)
	}

	r = mustCLI(t, addr, "", "topics", "delete", "orders")
	if r.stdout != "deleted topic orders\n" {
		t.Fatalf("delete printed %q", r.stdout)
	}
	r = mustCLI(t, addr, "", "topics", "list")
	if r.stdout != "payments\n" {
		t.Fatalf("list after delete printed %q, want %q", r.stdout, "payments\n")
	}
	r = cli(t, addr, "", "topics", "delete", "orders")
	if r.code != exitFailure || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("deleting a deleted topic: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestTopicsDescribeAllConfigs(t *testing.T) {
	b := startBroker(t)
	mustCLI(t, b.Addr(), "", "topics", "create", "c", "--config", "retention.ms=60000")
	r := mustCLI(t, b.Addr(), "", "topics", "describe", "c", "--all-configs")
	if !regexp.MustCompile(`(?m)^  retention\.ms +60000 +topic$`).MatchString(r.stdout) {
		t.Fatalf("--all-configs does not list retention.ms=60000 from the topic:\n%s", r.stdout)
	}
	if !regexp.MustCompile(`(?m)^  segment\.bytes +\d+ +\S+$`).MatchString(r.stdout) {
		t.Fatalf("--all-configs does not list segment.bytes:\n%s", r.stdout)
	}
}
