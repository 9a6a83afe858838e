package main

import (
	"regexp"
	"strings"
	"testing"
)

func TestTopicsAlter(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "alt", "--config", "segment.ms=60000")

	r := mustCLI(t, addr, "", "topics", "alter", "alt", "--config", "retention.ms=3600000", "--append-config", "cleanup.policy=compact", "--delete-config", "segment.ms")
	if want := "altered 3 configs of topic alt\n"; r.stdout != want {
		t.Fatalf("alter printed %q, want %q", r.stdout, want)
	}
	r = mustCLI(t, addr, "", "topics", "describe", "alt")
	if !strings.Contains(r.stdout, "\nConfigs: cleanup.policy=delete,compact,retention.ms=3600000\n") {
		t.Fatalf("describe after alter:\n%s", r.stdout)
	}
	mustCLI(t, addr, "", "topics", "alter", "alt", "--subtract-config", "cleanup.policy=delete")
	r = mustCLI(t, addr, "", "topics", "describe", "alt", "--all-configs")
	for _, re := range []string{
		`(?m)^  cleanup\.policy +compact +topic$`,
		`(?m)^  retention\.ms +3600000 +topic$`,
		`(?m)^  segment\.ms +604800000 +default$`,
		// Runnel fsyncs before it acknowledges: a static broker setting.
		`(?m)^  flush\.messages +1 +static$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("describe --all-configs does not match %s:\n%s", re, r.stdout)
		}
	}

	r = mustCLI(t, addr, "", "topics", "alter", "alt", "--config", "retention.ms=1", "--validate-only")
	if !strings.Contains(r.stdout, "nothing altered") {
		t.Errorf("--validate-only printed %q", r.stdout)
	}
	r = mustCLI(t, addr, "", "topics", "describe", "alt")
	if !strings.Contains(r.stdout, "retention.ms=3600000") {
		t.Errorf("--validate-only changed the topic:\n%s", r.stdout)
	}

	for _, tc := range []struct {
		what string
		args []string
		code int
		want string
	}{
		{"bad value", []string{"--config", "retention.ms=soon"}, exitFailure, "invalid value soon for configuration retention.ms: not a number"},
		{"unknown config", []string{"--config", "retention.weeks=1"}, exitFailure, "unknown topic config name: retention.weeks"},
		{"min above max", []string{"--config", "min.compaction.lag.ms=10", "--config", "max.compaction.lag.ms=5"}, exitFailure, "min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"},
		{"nothing", nil, exitUsage, "nothing to change"},
		{"no value", []string{"--config", "retention.ms"}, exitUsage, "want KEY=VALUE"},
		{"delete with value", []string{"--delete-config", "retention.ms=1"}, exitUsage, "want KEY"},
	} {
		r := cli(t, addr, "", append([]string{"topics", "alter", "alt"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.what, r.code, r.stderr, tc.code, tc.want)
		}
	}
	r = cli(t, addr, "", "topics", "alter", "nosuch", "--config", "retention.ms=1")
	if r.code != exitFailure || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("altering a missing topic: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestTopicsDeleteRecords(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "dr", "--partitions", "2")
	mustCLI(t, addr, "a\nb\nc\nd\n", "produce", "dr", "--partition", "0")
	mustCLI(t, addr, "e\nf\n", "produce", "dr", "--partition", "1")

	r := mustCLI(t, addr, "", "topics", "delete-records", "dr", "--partition", "0", "--offset", "3")
	if want := "partition 0: start offset 3\n"; r.stdout != want {
		t.Fatalf("delete-records printed %q, want %q", r.stdout, want)
	}
	r = mustCLI(t, addr, "", "topics", "delete-records", "dr", "--offset", "-1")
	if want := "partition 0: start offset 4\npartition 1: start offset 2\n"; r.stdout != want {
		t.Fatalf("delete-records of everything printed %q, want %q", r.stdout, want)
	}
	r = mustCLI(t, addr, "", "topics", "describe", "dr")
	fields := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if got := fields(lines[len(lines)-2]) + " | " + fields(lines[len(lines)-1]); got != "0 0 0 0 0 4 4 | 1 0 0 0 0 2 2" {
		t.Fatalf("describe after delete-records: %q\n%s", got, r.stdout)
	}

	r = cli(t, addr, "", "topics", "delete-records", "dr", "--partition", "1", "--offset", "9")
	if r.code != exitFailure || !strings.Contains(r.stderr, "OFFSET_OUT_OF_RANGE") {
		t.Errorf("past the high watermark: exit %d, stderr %q", r.code, r.stderr)
	}
	r = cli(t, addr, "", "topics", "delete-records", "dr", "--partition", "7", "--offset", "0")
	if r.code != exitFailure || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("missing partition: exit %d, stderr %q", r.code, r.stderr)
	}
	r = cli(t, addr, "", "topics", "delete-records", "dr")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--offset is required") {
		t.Errorf("without --offset: exit %d, stderr %q", r.code, r.stderr)
	}
}
