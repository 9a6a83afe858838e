package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// `runnel broker --max-connections-per-ip-overrides` reaches the broker:
// an address limited to one connection has its second closed. A
// malformed override is a usage error.
func TestBrokerLimitFlags(t *testing.T) {
	if r := cli(t, "", "", "broker", "--data-dir", t.TempDir(), "--max-connections-per-ip-overrides", "localhost:x"); r.code != exitUsage || !strings.Contains(r.stderr, "IP:COUNT") {
		t.Fatalf("bad override: exit %d, stderr %q", r.code, r.stderr)
	}
	ctx, stop := context.WithCancel(testContext(t))
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"broker", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--log-level", "warn",
			"--max-connections-per-ip", "5", "--max-connections-per-ip-overrides", "127.0.0.1:1", "--max-connections", "10",
			"--quota-window-num", "5", "--quota-window-size", "500ms"},
			env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	defer func() { stop(); <-done }()
	if !stdout.waitFor(testContext(t), func(s string) bool { return strings.Count(s, "\n") == 1 }) {
		t.Fatalf("broker printed %q; stderr %q", stdout.String(), stderr.String())
	}
	m := listeningRE.FindStringSubmatch(strings.TrimSpace(stdout.String()))
	if m == nil {
		t.Fatalf("broker printed %q", stdout.String())
	}
	first, err := net.Dial("tcp", m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// With the first open, a second from the same address is closed.
	second, err := net.Dial("tcp", m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetReadDeadline(time.Now().Add(30 * time.Second))
	var b [1]byte
	_, err = second.Read(b[:])
	if ne, ok := err.(net.Error); err == nil || (ok && ne.Timeout()) {
		t.Fatalf("a second connection from 127.0.0.1 was not closed: %v", err)
	}
}
