package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var registryRE = regexp.MustCompile(`^runnel broker schema registry on (http://127\.0\.0\.1:\d+)$`)

// TestBrokerCommandRegistry runs `runnel broker --registry-listen` and
// registers a schema through the REST API it serves.
func TestBrokerCommandRegistry(t *testing.T) {
	ctx, stop := context.WithCancel(testContext(t))
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"broker", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0",
			"--registry-listen", "127.0.0.1:0", "--log-level", "warn"},
			env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	if !stdout.waitFor(testContext(t), func(s string) bool { return strings.Count(s, "\n") == 2 }) {
		t.Fatalf("broker printed %q; stderr %q", stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	m := registryRE.FindStringSubmatch(lines[1])
	if m == nil {
		t.Fatalf("broker printed %q", stdout.String())
	}
	resp, err := http.Post(m[1]+"/subjects/t-value/versions", "application/vnd.schemaregistry.v1+json",
		strings.NewReader(`{"schema":"\"string\""}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"id":1,"version":1,"schema":"\"string\""}` {
		t.Fatalf("register: %d %s", resp.StatusCode, body)
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
