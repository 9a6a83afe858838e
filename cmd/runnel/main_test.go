package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

func TestMain(m *testing.M) {
	// The in-process brokers do not each take an eighth of the memory at
	// start; the built binary keeps the default (TestBrokerPrefaults).
	prefaultByDefault = false
	goleak.VerifyTestMain(m)
}

// startBroker runs a broker in process on a free port and closes it when
// the test ends.
func startBroker(t *testing.T) *broker.Broker {
	t.Helper()
	return testutil.StartBroker(t, broker.Config{})
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// result is what one in-process run of the command line gave.
type result struct {
	code           int
	stdout, stderr string
}

// syncBuffer is a bytes.Buffer safe for a writer and concurrent readers,
// who can wait for what they expect to be written.
type syncBuffer struct {
	mu      sync.Mutex // guards the following
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until ok holds for what was written, or ctx ends.
func (s *syncBuffer) waitFor(ctx context.Context, ok func(string) bool) bool {
	for {
		s.mu.Lock()
		if ok(s.b.String()) {
			s.mu.Unlock()
			return true
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// cli runs the command line in process with stdin and the given
// environment (RUNNEL_BROKERS only).
func cli(t *testing.T, brokers, stdin string, args ...string) result {
	t.Helper()
	return cliContext(testContext(t), brokers, stdin, args...)
}

func cliContext(ctx context.Context, brokers, stdin string, args ...string) result {
	var stdout, stderr syncBuffer
	code := run(ctx, args, env{
		stdin:  strings.NewReader(stdin),
		stdout: &stdout,
		stderr: &stderr,
		getenv: func(k string) string {
			if k == "RUNNEL_BROKERS" {
				return brokers
			}
			return ""
		},
	})
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustCLI runs the command line and fails the test unless it exits 0.
func mustCLI(t *testing.T, brokers, stdin string, args ...string) result {
	t.Helper()
	r := cli(t, brokers, stdin, args...)
	if r.code != 0 {
		t.Fatalf("runnel %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func testClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testAdmin(t *testing.T, addr string) *kadm.Client {
	return kadm.NewClient(testClient(t, addr))
}

// rec is a record as the tests compare them.
type rec struct {
	Partition int32
	Offset    int64
	Key       string // "<nil>" for a null key
	Value     string
}

func toRec(r *kgo.Record) rec {
	k := "<nil>"
	if r.Key != nil {
		k = string(r.Key)
	}
	return rec{Partition: r.Partition, Offset: r.Offset, Key: k, Value: string(r.Value)}
}

// readTopic reads every record of topic's partitions from their start,
// stopping once each partition reached its end offset, ordered by partition
// then offset.
func readTopic(t *testing.T, addr, topic string) []rec {
	t.Helper()
	var out []rec
	for _, r := range testutil.ReadTopic(t, addr, topic, false) {
		out = append(out, toRec(r))
	}
	return out
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stderr, or in stdout for exit 0
	}{
		{"no command", nil, exitUsage, "no command given"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"help", []string{"help"}, exitOK, "commands:"},
		{"global -h", []string{"-h"}, exitOK, "commands:"},
		{"unknown global flag", []string{"--nope", "topics", "list"}, exitUsage, "flag provided but not defined: -nope"},
		{"command -h", []string{"produce", "-h"}, exitOK, ""},
		{"produce without topic", []string{"produce"}, exitUsage, "missing TOPIC"},
		{"produce bad acks", []string{"produce", "t", "--acks", "2"}, exitUsage, `--acks "2"`},
		{"produce bad compression", []string{"produce", "t", "--compression", "brotli"}, exitUsage, `--compression "brotli"`},
		{"produce bad flag", []string{"produce", "t", "--partitions", "2"}, exitUsage, "flag provided but not defined: -partitions"},
		{"produce two topics", []string{"produce", "a", "b"}, exitUsage, `unexpected argument "b"`},
		{"consume offset and beginning", []string{"consume", "t", "--offset", "3", "--from-beginning"}, exitUsage, "exclude each other"},
		{"consume negative offset", []string{"consume", "t", "--offset", "-3"}, exitUsage, "negative"},
		{"consume bad timeout", []string{"consume", "t", "--timeout", "soon"}, exitUsage, "invalid value"},
		{"topics without subcommand", []string{"topics"}, exitUsage, "missing subcommand"},
		{"topics unknown subcommand", []string{"topics", "rename"}, exitUsage, `unknown subcommand "rename"`},
		{"topics create without name", []string{"topics", "create"}, exitUsage, "missing NAME"},
		{"topics create zero partitions", []string{"topics", "create", "t", "--partitions", "0"}, exitUsage, "--partitions 0"},
		{"topics create bad config", []string{"topics", "create", "t", "--config", "retention.ms"}, exitUsage, "want KEY=VALUE"},
		{"broker bad log level", []string{"broker", "--log-level", "loud"}, exitUsage, "--log-level"},
		{"broker stray argument", []string{"broker", "now"}, exitUsage, `unexpected argument "now"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, "127.0.0.1:1", "", tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			out := r.stderr
			if tc.code == exitOK {
				out = r.stdout + r.stderr
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("output does not mention %q:\n%s", tc.want, out)
			}
			if tc.code == exitUsage && !strings.Contains(r.stderr, "usage: runnel") {
				t.Fatalf("a usage error prints no usage:\n%s", r.stderr)
			}
		})
	}
}

func TestParseArgsInterleaved(t *testing.T) {
	e := env{stderr: &bytes.Buffer{}}
	fs := newFlagSet(e, &globals{}, "x", "x", false)
	n := fs.Int("n", 0, "")
	v := fs.Bool("v", false, "")
	pos, err := parseArgs(fs, []string{"a", "-n", "3", "b", "-v", "--", "-n", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if *n != 3 || !*v {
		t.Fatalf("n=%d v=%t, want 3 true", *n, *v)
	}
	if want := []string{"a", "b", "-n", "c"}; !slices.Equal(pos, want) {
		t.Fatalf("positional %q, want %q", pos, want)
	}
}

func TestBrokersFlagAndEnv(t *testing.T) {
	b := startBroker(t)
	adm := testAdmin(t, b.Addr())
	if _, err := adm.CreateTopic(testContext(t), 1, 1, nil, "seen"); err != nil {
		t.Fatal(err)
	}
	// Environment, global flag, command flag; the flags win over the
	// environment, which points nowhere.
	for _, args := range [][]string{
		{"topics", "list"},
		{"--brokers", b.Addr(), "topics", "list"},
		{"topics", "list", "--brokers", b.Addr()},
	} {
		env := b.Addr()
		if len(args) > 2 {
			env = "127.0.0.1:1"
		}
		r := mustCLI(t, env, "", args...)
		if r.stdout != "seen\n" {
			t.Fatalf("runnel %s printed %q, want %q", strings.Join(args, " "), r.stdout, "seen\n")
		}
	}
}

func TestUnreachableBroker(t *testing.T) {
	// Port 1 on loopback refuses connections: the command must fail
	// within its timeout, not hang.
	r := cli(t, "127.0.0.1:1", "", "topics", "list", "--timeout", "2s")
	if r.code != exitFailure {
		t.Fatalf("exit %d, want %d\nstderr:\n%s", r.code, exitFailure, r.stderr)
	}
	if !strings.Contains(r.stderr, "runnel topics: list topics:") {
		t.Fatalf("stderr does not say what failed:\n%s", r.stderr)
	}
}
