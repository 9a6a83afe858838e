package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runEnv runs the command line in process with the given environment.
func runEnv(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	code := run(testContext(t), args, env{
		stdin:  strings.NewReader(""),
		stdout: &stdout,
		stderr: &stderr,
		getenv: func(k string) string { return vars[k] },
	})
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// TestBootstrapServer reaches the broker every way Kafka users name it:
// --bootstrap-server before or after the command, its alias --brokers,
// RUNNEL_BOOTSTRAP_SERVER, and bootstrap.servers in a --command-config
// file, which a flag or the environment overrides.
func TestBootstrapServer(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "seen")
	props := filepath.Join(t.TempDir(), "client.properties")
	if err := os.WriteFile(props, []byte("# a client config\nbootstrap.servers="+addr+"\nclient.id = cli-test\nsecurity.protocol=PLAINTEXT\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		vars map[string]string
		args []string
	}{
		{"flag before", nil, []string{"--bootstrap-server", addr, "topics", "list"}},
		{"flag after", nil, []string{"topics", "list", "--bootstrap-server=" + addr}},
		{"alias", nil, []string{"topics", "list", "--brokers", addr}},
		{"env", map[string]string{"RUNNEL_BOOTSTRAP_SERVER": addr}, []string{"topics", "list"}},
		{"old env", map[string]string{"RUNNEL_BROKERS": addr}, []string{"topics", "list"}},
		{"command config", nil, []string{"topics", "list", "--command-config", props}},
		{"env over command config", map[string]string{"RUNNEL_BOOTSTRAP_SERVER": addr}, []string{"--command-config", props, "topics", "list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runEnv(t, tc.vars, tc.args...)
			if r.code != 0 || r.stdout != "seen\n" {
				t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}

	bad := filepath.Join(t.TempDir(), "bad.properties")
	if err := os.WriteFile(bad, []byte("sasl.kerberos.service.name=kafka\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runEnv(t, nil, "topics", "list", "--command-config", bad)
	if r.code != exitFailure || !strings.Contains(r.stderr, `line 1: unknown property "sasl.kerberos.service.name"; known: bootstrap.servers`) {
		t.Fatalf("unknown property: exit %d stderr %q", r.code, r.stderr)
	}
}

// TestHelpOneStyle checks every command's -h: flags listed as --name, the
// alias --brokers left out, and no default shown twice.
func TestHelpOneStyle(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"broker", "-h"}, {"produce", "-h"}, {"consume", "-h"}, {"topics", "create", "-h"},
		{"groups", "reset-offsets", "-h"}, {"groups", "describe", "-h"}, {"reset", "-h"},
	} {
		r := runEnv(t, nil, args...)
		out := r.stdout + r.stderr
		if r.code != 0 {
			t.Fatalf("runnel %s: exit %d\n%s", strings.Join(args, " "), r.code, out)
		}
		for _, line := range strings.Split(out, "\n") {
			trimmed := strings.TrimSpace(line)
			if strings.HasPrefix(trimmed, "-") && !strings.HasPrefix(trimmed, "--") {
				t.Errorf("runnel %s: flag in single-dash style: %q", strings.Join(args, " "), line)
			}
			if strings.HasPrefix(trimmed, "--brokers") {
				t.Errorf("runnel %s: lists the alias: %q", strings.Join(args, " "), line)
			}
			if strings.Count(line, "default") > 1 {
				t.Errorf("runnel %s: default shown twice: %q", strings.Join(args, " "), line)
			}
		}
	}
	r := runEnv(t, nil, "broker", "-h")
	for _, f := range []string{"--data-dir", "--listen", "--metrics-listen", "--advertised-host", "--node-id", "--auto-create-topics", "--num-partitions", "--log-level"} {
		if !strings.Contains(r.stdout+r.stderr, "  "+f) {
			t.Errorf("runnel broker -h does not list %s:\n%s", f, r.stdout+r.stderr)
		}
	}
}

// TestHelpReference prints the reference: every command's description
// under runnel help, and one command's flags and description under
// runnel help COMMAND.
func TestHelpReference(t *testing.T) {
	r := runEnv(t, nil, "help")
	if r.code != 0 {
		t.Fatalf("runnel help: exit %d", r.code)
	}
	for _, name := range referenceOrder {
		if !strings.Contains(r.stdout, "\nrunnel "+name+"\n") || commandHelp[name] == "" {
			t.Errorf("runnel help lacks %s", name)
		}
	}
	r = runEnv(t, nil, "help", "groups", "reset-offsets")
	out := r.stdout + r.stderr
	if r.code != 0 || !strings.Contains(out, "--execute") || !strings.Contains(out, "kafka-consumer-groups --reset-offsets") {
		t.Fatalf("runnel help groups reset-offsets: exit %d\n%s", r.code, out)
	}
}
