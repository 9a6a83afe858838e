package main

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// `runnel cluster --nodes 3` starts three broker processes that form one
// cluster: it prints a bootstrap list, topics get three replicas, every
// broker is listed in metadata, and it stops cleanly on SIGTERM. Started
// again on the same directory it reuses its ports and keeps its data.
func TestClusterCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and runs three brokers")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	bin := filepath.Join(t.TempDir(), "runnel")
	if out, err := exec.CommandContext(testContext(t), goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	start := func() (*exec.Cmd, string, chan error) {
		t.Helper()
		cmd := exec.Command(bin, "cluster", "--nodes", "3", "--data-dir", dir, "--log-level", "warn")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		boot := make(chan string, 1)
		// Whatever happens to the test, the brokers must not outlive it.
		t.Cleanup(func() { cmd.Process.Kill() })
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if b, ok := strings.CutPrefix(sc.Text(), "runnel cluster bootstrap "); ok {
					boot <- b
				}
			}
			done <- cmd.Wait()
		}()
		select {
		case b := <-boot:
			return cmd, b, done
		case err := <-done:
			t.Fatalf("cluster exited before serving: %v\n%s", err, stderr.String())
		case <-time.After(90 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("cluster did not start\n%s", stderr.String())
		}
		return nil, "", nil
	}
	stop := func(cmd *exec.Cmd, done chan error) {
		t.Helper()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("cluster exited with %v", err)
			}
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatal("cluster did not stop")
		}
	}

	cmd, boot, done := start()
	seeds := strings.Split(boot, ",")
	if len(seeds) != 3 {
		t.Fatalf("bootstrap %q, want three brokers", boot)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("c"), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, "c"); err != nil {
		t.Fatal(err)
	}
	// Every broker applies the new topic shortly after the controller.
	for {
		md, err := adm.Metadata(ctx, "c")
		if err == nil && len(md.Brokers) == 3 && len(md.Topics["c"].Partitions[0].Replicas) == 3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("metadata: want 3 brokers and 3 replicas; last %+v, %v", md, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("kept")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	stop(cmd, done)

	cmd, boot2, done := start()
	defer stop(cmd, done)
	if boot2 != boot {
		t.Fatalf("restarted cluster at %q, was %q", boot2, boot)
	}
	cl, err = kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("c"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fs := cl.PollFetches(ctx)
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "kept" {
		t.Fatalf("after restart: %v (errors %v)", recs, fs.Errors())
	}
}
