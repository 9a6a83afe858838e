package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
)

var (
	listeningRE = regexp.MustCompile(`^runnel broker listening on (127\.0\.0\.1:\d+)$`)
	metricsRE   = regexp.MustCompile(`^runnel broker metrics on http://(127\.0\.0\.1:\d+)/metrics$`)
)

// checkMetrics fetches /metrics and fails unless it serves Prometheus
// text, which it returns.
func checkMetrics(t *testing.T, addr string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "# TYPE ") {
		t.Fatalf("GET /metrics: status %d, body %.200q", resp.StatusCode, body)
	}
	return string(body)
}

// brokerInProcess runs `runnel broker` in this process, on a fresh data dir and
// loopback listener, with args, until the test ends, and returns the
// lines it printed once it printed lines of them.
func brokerInProcess(t *testing.T, lines int, args ...string) []string {
	t.Helper()
	ctx, stop := context.WithCancel(testContext(t))
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"broker", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--log-level", "warn"}, args...),
			env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	t.Cleanup(func() { stop(); <-done })
	if !stdout.waitFor(testContext(t), func(s string) bool { return strings.Count(s, "\n") == lines }) {
		t.Fatalf("broker printed %q; stderr %q", stdout.String(), stderr.String())
	}
	return strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
}

// describeBrokerConfigs asks broker 1 for the named configs with
// DescribeConfigs and returns those it described, by name (a null value
// as "").
func describeBrokerConfigs(t *testing.T, cl *kgo.Client, names ...string) map[string]string {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
	rr.ConfigNames = names
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(testContext(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range resp.Resources[0].Configs {
		got[c.Name] = ""
		if c.Value != nil {
			got[c.Name] = *c.Value
		}
	}
	return got
}

func TestBrokerCommandInProcess(t *testing.T) {
	ctx, stop := context.WithCancel(testContext(t))
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"broker", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0",
			"--metrics-listen", "127.0.0.1:0", "--num-partitions", "4", "--auto-create-topics", "--log-level", "warn"},
			env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	if !stdout.waitFor(testContext(t), func(s string) bool { return strings.Count(s, "\n") == 2 }) {
		t.Fatalf("broker printed %q; stderr %q", stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	m := listeningRE.FindStringSubmatch(lines[0])
	mm := metricsRE.FindStringSubmatch(lines[1])
	if m == nil || mm == nil {
		t.Fatalf("broker printed %q", stdout.String())
	}
	addr := m[1]
	checkMetrics(t, mm[1])

	// --auto-create-topics with --num-partitions: the first produce makes
	// a topic of four partitions.
	mustCLI(t, addr, "a\n", "produce", "auto", "--partition", "0")
	r := mustCLI(t, addr, "", "topics", "describe", "auto")
	if !strings.Contains(r.stdout, "Partitions: 4\t") {
		t.Fatalf("auto-created topic:\n%s", r.stdout)
	}

	stop()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("broker exited %d; stderr:\n%s", code, stderr.String())
		}
	case <-testContext(t).Done():
		t.Fatal("broker did not stop")
	}
	if strings.Contains(stderr.String(), "level=ERROR") {
		t.Fatalf("broker logged errors:\n%s", stderr.String())
	}
}

func TestBrokerCommandStartFails(t *testing.T) {
	// A data dir that is a file cannot be opened.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := cli(t, "", "", "broker", "--data-dir", f, "--listen", "127.0.0.1:0")
	if r.code != exitFailure || !strings.HasPrefix(r.stderr, "runnel broker: ") || r.stdout != "" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// binaryBroker is `runnel broker` running as a subprocess.
type binaryBroker struct {
	cmd     *exec.Cmd
	addr    string
	metrics string // HOST:PORT of /metrics
	stderr  *syncBuffer
	done    chan struct{} // closed when the process was waited for
	waitErr error         // what Wait returned; read after done
}

func startBinaryBroker(t *testing.T, bin, dir string, args ...string) *binaryBroker {
	t.Helper()
	// A small direct-writes cache: the broker takes all of it at start
	// (the default, an eighth of the memory, costs seconds of CPU beside
	// the other tests); args may set another.
	args = append([]string{"broker", "--data-dir", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--direct-writes-cache=67108864"}, args...)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	bb := &binaryBroker{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = bb.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 2)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody reads past the first lines
			}
		}
	}()
	go func() {
		// Wait must not close stdout before everything is read.
		<-scanned
		bb.waitErr = cmd.Wait()
		close(bb.done)
	}()
	t.Cleanup(func() {
		select {
		case <-bb.done:
		default:
			cmd.Process.Kill()
			<-bb.done
		}
	})

	ctx := testContext(t)
	var got []string
	for len(got) < 2 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("broker closed stdout after %q; stderr:\n%s", got, bb.stderr.String())
			}
			got = append(got, l)
		case <-ctx.Done():
			t.Fatalf("broker printed %q before the deadline; stderr:\n%s", got, bb.stderr.String())
		}
	}
	m, mm := listeningRE.FindStringSubmatch(got[0]), metricsRE.FindStringSubmatch(got[1])
	if m == nil || mm == nil {
		t.Fatalf("broker printed %q, want the listening and the metrics line", got)
	}
	bb.addr, bb.metrics = m[1], mm[1]
	checkMetrics(t, mm[1])
	return bb
}

// stop signals the broker and checks that it exits 0 after a clean close.
func (bb *binaryBroker) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := bb.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bb.done:
		if bb.waitErr != nil {
			t.Fatalf("broker exited with %v after %v; stderr:\n%s", bb.waitErr, sig, bb.stderr.String())
		}
	case <-testContext(t).Done():
		t.Fatalf("broker did not exit after %v; stderr:\n%s", sig, bb.stderr.String())
	}
	if !strings.Contains(bb.stderr.String(), "shut down cleanly") {
		t.Fatalf("broker stderr does not report a clean shutdown:\n%s", bb.stderr.String())
	}
}

// runBinary runs the built command with stdin and returns its result.
func runBinary(t *testing.T, bin, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(testContext(t), bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", strings.Join(args, " "), err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// TestBinary builds the command and runs it as a user would: a broker in
// the background, and topics, produce and consume against it.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := buildCommand(t)

	// Bad flags print the usage and exit 2.
	r := runBinary(t, bin, "", "broker", "--listen")
	if r.code != exitUsage || !strings.Contains(r.stderr, "usage: runnel broker") {
		t.Fatalf("bad flag: exit %d, stderr %q", r.code, r.stderr)
	}

	dir := t.TempDir()
	bb := startBinaryBroker(t, bin, dir)
	brokers := "--brokers=" + bb.addr
	must := func(stdin string, args ...string) result {
		t.Helper()
		r := runBinary(t, bin, stdin, append([]string{brokers}, args...)...)
		if r.code != 0 {
			t.Fatalf("runnel %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r
	}
	must("", "topics", "create", "greetings", "--partitions", "2")
	if r := must("", "topics", "list"); r.stdout != "greetings\n" {
		t.Fatalf("topics list printed %q", r.stdout)
	}
	input := "alice:hello\nbob:hi there\ncarol:\n:no key\nalice:again\n"
	if r := must(input, "produce", "greetings", "--key-separator", ":"); r.stderr != "produced 5 records to greetings\n" {
		t.Fatalf("produce reported %q", r.stderr)
	}

	// The records as a Kafka client sees them, then as the command
	// prints them partition by partition.
	want := readTopic(t, bb.addr, "greetings")
	if len(want) != 5 {
		t.Fatalf("topic holds %d records, want 5: %+v", len(want), want)
	}
	keys := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(input, "\n"), "\n") {
		k, v, _ := strings.Cut(line, ":")
		keys[v] = k
	}
	printed := map[int32]string{}
	for _, w := range want {
		if keys[w.Value] != w.Key {
			t.Fatalf("record %+v: key %q, want %q", w, w.Key, keys[w.Value])
		}
		printed[w.Partition] += w.Key + "\t" + w.Value + "\n"
	}
	for p := range int32(2) {
		n := strings.Count(printed[p], "\n")
		if n == 0 {
			continue
		}
		r := must("", "consume", "greetings", "--partition", strconv.Itoa(int(p)), "--from-beginning", "--print-key",
			"--max-messages", strconv.Itoa(n), "--timeout", "30s")
		if r.stdout != printed[p] {
			t.Fatalf("consume partition %d printed %q, want %q", p, r.stdout, printed[p])
		}
	}

	// A failure exits 1 with the reason.
	if r := runBinary(t, bin, "", brokers, "consume", "nosuch", "--timeout", "1s"); r.code != exitFailure || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("consume of a missing topic: exit %d, stderr %q", r.code, r.stderr)
	}

	bb.stop(t, syscall.SIGTERM)

	// The data survives a clean restart; SIGINT stops it as well.
	bb = startBinaryBroker(t, bin, dir)
	if got := readTopic(t, bb.addr, "greetings"); !slices.Equal(got, want) {
		t.Fatalf("after restart the topic holds %+v, want %+v", got, want)
	}
	bb.stop(t, syscall.SIGINT)
}

// TestBrokerCommandDataDirInUse runs a second broker on the data dir of a
// running one: it exits 1 at once with one line saying who holds the dir.
func TestBrokerCommandDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	ctx, stop := context.WithCancel(testContext(t))
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"broker", "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-level", "warn"},
			env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	if !stdout.waitFor(testContext(t), func(s string) bool { return strings.Contains(s, "listening on") }) {
		t.Fatalf("first broker printed %q; stderr %q", stdout.String(), stderr.String())
	}

	second := make(chan result, 1)
	go func() { second <- cli(t, "", "", "broker", "--data-dir", dir, "--listen", "127.0.0.1:0") }()
	var r result
	select {
	case r = <-second:
	case <-time.After(20 * time.Second):
		t.Fatal("a second broker on a data dir in use did not exit within 20s")
	}
	want := fmt.Sprintf("runnel broker: data dir %s is in use by another broker (pid %d)\n", dir, os.Getpid())
	if r.code != exitFailure || r.stderr != want {
		t.Fatalf("second broker: exit %d, stderr %q; want exit 1 and %q", r.code, r.stderr, want)
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("first broker exited %d; stderr:\n%s", code, stderr.String())
	}
}

// buildCommand builds the command into a temporary directory, or skips
// the test without a go tool.
func buildCommand(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	bin := filepath.Join(t.TempDir(), "runnel")
	build := exec.CommandContext(testContext(t), goTool, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// --memory-limit: auto derives the limit from the budgets unless
// GOMEMLIMIT is set; a number is taken as is, 0 meaning none.
func TestMemoryLimitFlag(t *testing.T) {
	for _, c := range []struct {
		v, env string
		cfg    broker.Config
		want   int64
		bad    bool
	}{
		{v: "auto", want: 1 << 30},
		{v: "auto", cfg: broker.Config{QueuedMaxRequestBytes: 100 << 20, QueuedMaxResponseBytes: 50 << 20}, want: 662 << 20},
		{v: "auto", env: "2GiB", want: 0},
		{v: "0", want: 0},
		{v: "123456789", env: "2GiB", want: 123456789},
		{v: "-1", bad: true},
		{v: "1GiB", bad: true},
	} {
		got, err := memoryLimitFlag(c.v, c.cfg, c.env)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("--memory-limit %s with GOMEMLIMIT=%q: %d, %v; want %d, error %t", c.v, c.env, got, err, c.want, c.bad)
		}
	}
}
