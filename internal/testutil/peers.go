package testutil

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/kafkapeer"
)

// RequirePeers reports whether a missing peer (Apache Kafka's jars, kcat,
// a Python or Node client) fails the test rather than skipping it, as in
// CI (RUNNEL_REQUIRE_PEERS=1).
func RequirePeers() bool { return os.Getenv("RUNNEL_REQUIRE_PEERS") == "1" }

// MissingPeer skips the test, or fails it under RUNNEL_REQUIRE_PEERS=1.
func MissingPeer(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if RequirePeers() {
		t.Fatalf("%s (RUNNEL_REQUIRE_PEERS=1)", msg)
	}
	t.Skipf("%s; set RUNNEL_REQUIRE_PEERS=1 to fail instead", msg)
}

// KafkaInstall returns the Apache Kafka install scripts/fetch-kafka.sh
// fills, or skips the test (fails it under RUNNEL_REQUIRE_PEERS=1).
func KafkaInstall(t testing.TB) kafkapeer.Install {
	t.Helper()
	in, whyNot := kafkapeer.Find()
	if whyNot != "" {
		MissingPeer(t, "Apache Kafka: %s", whyNot)
	}
	return in
}

// JavaTool runs an Apache Kafka tool class through scripts/kafka-tool.sh
// (tool), with stdin as its input, and returns its stdout. It fails the
// test when the tool fails, and marks it failed when the tool logs an
// ERROR line.
func JavaTool(t testing.TB, ctx context.Context, tool, stdin, class string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, tool, append([]string{class}, args...)...)
	// Tools start faster without the optimizing compiler, and these runs
	// are short.
	cmd.Env = append(cmd.Environ(), "KAFKA_OPTS=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto")
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	short := class[strings.LastIndex(class, ".")+1:]
	t.Logf("%s %s: %v", short, strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", short, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	if s := stderr.String(); strings.Contains(s, " ERROR ") {
		t.Errorf("%s logged errors:\n%s", short, s)
	}
	return stdout.String()
}
