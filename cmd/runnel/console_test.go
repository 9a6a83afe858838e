package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

var consoleRE = regexp.MustCompile(`runnel (?:broker )?console on (http://127\.0\.0\.1:\d+/)`)

// httpGet fetches u and returns the status and body.
func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestConsoleCommand runs "runnel console" against a broker: it prints
// its address, serves the cluster's topics and groups, is read-only
// without --console-allow-writes, and stops cleanly on cancel.
func TestConsoleCommand(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{GroupInitialRebalanceDelay: -1, OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
	mustCLI(t, b.Addr(), "", "topics", "create", "shown", "--partitions", "2")
	mustCLI(t, b.Addr(), "a\nb\n", "produce", "shown")

	ctx, stop := context.WithCancel(testContext(t))
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"console", "--bootstrap-server", b.Addr(), "--http-listen", "127.0.0.1:0"},
			env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	if !stdout.waitFor(testContext(t), func(s string) bool { return strings.Contains(s, "\n") }) {
		t.Fatalf("console printed %q; stderr %q", stdout.String(), stderr.String())
	}
	m := consoleRE.FindStringSubmatch(stdout.String())
	if m == nil || !strings.Contains(stdout.String(), "(read-only)") {
		t.Fatalf("console printed %q", stdout.String())
	}
	web := m[1]

	status, body := httpGet(t, web+"api/topics")
	var topics []struct {
		Name       string `json:"name"`
		Partitions int    `json:"partitions"`
		Records    int64  `json:"records"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &topics) != nil {
		t.Fatalf("api/topics: %d %s", status, body)
	}
	found := false
	for _, tp := range topics {
		found = found || tp.Name == "shown" && tp.Partitions == 2 && tp.Records == 2
	}
	if !found {
		t.Fatalf("api/topics lacks shown with 2 partitions and 2 records: %s", body)
	}
	if status, body := httpGet(t, web+"topics/shown?from=earliest"); status != http.StatusOK || !strings.Contains(body, "<pre class=\"payload text\"") {
		t.Fatalf("topic page: %d\n%s", status, body)
	}
	resp, err := http.Post(web+"api/topics/shown/produce", "application/json", strings.NewReader(`{"value":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("produce on a read-only console: %d", resp.StatusCode)
	}

	stop()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("console exited %d; stderr:\n%s", code, stderr.String())
		}
	case <-testContext(t).Done():
		t.Fatal("console did not stop")
	}
	if r := runEnv(t, nil, "console", "extra"); r.code != exitUsage {
		t.Fatalf("console extra: exit %d", r.code)
	}
}

// TestBrokerCommandConsole: runnel broker --http-listen serves the console
// and says where; --console-allow-writes lets it write.
func TestBrokerCommandConsole(t *testing.T) {
	ctx, stop := context.WithCancel(testContext(t))
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"broker", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0",
			"--http-listen", "127.0.0.1:0", "--console-allow-writes", "--log-level", "warn"},
			env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	if !stdout.waitFor(testContext(t), func(s string) bool { return consoleRE.MatchString(s) }) {
		t.Fatalf("broker printed %q; stderr %q", stdout.String(), stderr.String())
	}
	web := consoleRE.FindStringSubmatch(stdout.String())[1]
	status, body := httpGet(t, web)
	if status != http.StatusOK || !strings.Contains(body, "Partitions online") || !strings.Contains(body, "writes allowed") {
		t.Fatalf("overview: %d\n%s", status, body)
	}
	// The flag lets the console write: create a topic, produce to it.
	for _, w := range []struct{ path, body string }{
		{"api/topics", `{"name":"written","partitions":1}`},
		{"api/topics/written/produce", `{"value":"from the console"}`},
	} {
		resp, err := http.Post(web+w.path, "application/json", strings.NewReader(w.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s on a console with writes allowed: %d %s", w.path, resp.StatusCode, b)
		}
	}
	if status, body := httpGet(t, web+"api/topics/written/messages?from=earliest"); status != http.StatusOK || !strings.Contains(body, `"text": "from the console"`) {
		t.Fatalf("the produced record: %d %s", status, body)
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
}

// TestConsoleCommandSecured: "runnel console --command-config" connects
// with the file's security settings (SASL here), for its own clients as
// for the first, and shows the cluster.
func TestConsoleCommandSecured(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{Security: broker.SecurityConfig{
		Listeners: "SASL_PLAINTEXT://127.0.0.1:0",
		SASL:      broker.SASLConfig{Users: map[string]string{"alice": "alice-secret"}},
	}})
	props := writeProps(t, "bootstrap.servers="+b.Addr(), "security.protocol=SASL_PLAINTEXT", "sasl.mechanism=PLAIN",
		"sasl.username=alice", "sasl.password=alice-secret")
	if r := runEnv(t, nil, "topics", "create", "guarded", "--command-config", props); r.code != 0 {
		t.Fatalf("topics create: exit %d stderr %q", r.code, r.stderr)
	}
	ctx, stop := context.WithCancel(testContext(t))
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"console", "--command-config", props, "--http-listen", "127.0.0.1:0"},
			env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	if !stdout.waitFor(testContext(t), func(s string) bool { return strings.Contains(s, "\n") }) {
		t.Fatalf("console printed %q; stderr %q", stdout.String(), stderr.String())
	}
	m := consoleRE.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("console printed %q", stdout.String())
	}
	status, body := httpGet(t, m[1]+"api/topics")
	if status != http.StatusOK || !strings.Contains(body, `"guarded"`) {
		t.Fatalf("api/topics over SASL: %d %s", status, body)
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("console exited %d; stderr:\n%s", code, stderr.String())
	}
}

// TestBrokerCommandConsoleSecured: a broker whose only listener needs SASL
// serves its console when --console-command-config gives the console
// credentials.
func TestBrokerCommandConsoleSecured(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("alice=alice-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	props := writeProps(t, "security.protocol=SASL_PLAINTEXT", "sasl.mechanism=PLAIN", "sasl.username=alice", "sasl.password=alice-secret")
	args := []string{"broker", "--data-dir", t.TempDir(), "--listeners", "SASL_PLAINTEXT://127.0.0.1:0",
		"--sasl-users-file", users, "--http-listen", "127.0.0.1:0", "--console-command-config", props, "--log-level", "warn"}
	ctx, stop := context.WithCancel(testContext(t))
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, args, env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	if !stdout.waitFor(testContext(t), func(s string) bool { return consoleRE.MatchString(s) }) {
		t.Fatalf("broker printed %q; stderr %q", stdout.String(), stderr.String())
	}
	web := consoleRE.FindStringSubmatch(stdout.String())[1]
	if status, body := httpGet(t, web+"api/topics"); status != http.StatusOK {
		t.Fatalf("api/topics of a console with credentials: %d %s", status, body)
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("broker exited %d; stderr:\n%s", code, stderr.String())
	}
}
