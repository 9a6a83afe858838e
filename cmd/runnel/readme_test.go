package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// walkthroughMarker precedes the README block TestReadmeWalkthrough runs.
const walkthroughMarker = "<!-- walkthrough: run by TestReadmeWalkthrough -->"

// readmeWalkthrough returns the commands of the README's walkthrough
// block, one a line.
func readmeWalkthrough(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), walkthroughMarker+"\n```sh\n")
	if !ok {
		t.Fatalf("README.md has no %q followed by a sh block", walkthroughMarker)
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("README.md: the walkthrough block does not end")
	}
	return strings.Split(strings.TrimSpace(block), "\n")
}

// TestReadmeWalkthrough runs the README's broker walkthrough as written,
// against the built command running a broker: `go run ./cmd/runnel`
// becomes the binary, and 127.0.0.1:9092 the broker's address (the
// runnel commands find it in RUNNEL_BOOTSTRAP_SERVER, as a user's would
// find their broker by default). Each line must exit 0 and print what
// the README says it does.
func TestReadmeWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	_, kcatErr := exec.LookPath("kcat")
	if kcatErr != nil && os.Getenv("RUNNEL_REQUIRE_PEERS") != "1" {
		t.Skip("kcat is not installed (apt-get install kcat); set RUNNEL_REQUIRE_PEERS=1 to fail instead")
	}
	if kcatErr != nil {
		t.Fatal("kcat is not installed (RUNNEL_REQUIRE_PEERS=1)")
	}
	bin := buildCommand(t)
	bb := startBinaryBroker(t, bin, t.TempDir())

	// What each command must print, by a piece of the command; each
	// must match one line of the block.
	checks := []struct {
		cmd            string
		stdout, stderr []string // substrings
	}{
		{"topics create greetings", nil, nil},
		{"produce greetings", nil, []string{"produced 2 records to greetings"}},
		{"consume greetings --from-beginning --print-key", []string{"alice\thello\n", "bob\thi\n"}, []string{"consumed 2 records"}},
		{"kcat -P", nil, nil},
		{"kcat -C", []string{"hello\n", "hi\n"}, nil},
		{"consume greetings --group readers", nil, []string{"consumed 3 records"}},
		{"groups describe readers", []string{"greetings", "Lag"}, nil},
		{"--to-earliest\n", []string{"NewOffset"}, []string{"add --execute"}},
		{"--to-earliest --execute", []string{"NewOffset"}, []string{"reset 3 offsets of group readers"}},
	}
	lines := readmeWalkthrough(t)
	used := make([]bool, len(checks))
	for _, line := range lines {
		cmdline := strings.ReplaceAll(line, "go run ./cmd/runnel", bin)
		cmdline = strings.ReplaceAll(cmdline, "127.0.0.1:9092", bb.addr)
		cmd := exec.CommandContext(testContext(t), bash, "-o", "pipefail", "-c", cmdline)
		cmd.Env = append(os.Environ(), "RUNNEL_BOOTSTRAP_SERVER="+bb.addr)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", line, err, stdout.String(), stderr.String())
		}
		for i, c := range checks {
			if used[i] || !strings.Contains(line+"\n", c.cmd) {
				continue
			}
			used[i] = true
			for _, w := range c.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("%s: stdout lacks %q:\n%s", line, w, stdout.String())
				}
			}
			for _, w := range c.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("%s: stderr lacks %q:\n%s", line, w, stderr.String())
				}
			}
			break
		}
	}
	for i, c := range checks {
		if !used[i] {
			t.Errorf("the walkthrough has no line with %q", c.cmd)
		}
	}
}
