package faultinject_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/faultinject"
)

// startProcess starts `runnel broker` on a free port in dir (a new
// temporary directory when ""), closed when the test ends; a failing
// test prints its output.
func startProcess(t *testing.T, dir string, args ...string) *faultinject.Process {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := faultinject.StartBroker(ctx, runnelBin(t), append([]string{"--data-dir", dir, "--listen", "127.0.0.1:0"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		if t.Failed() {
			t.Logf("broker output:\n%s", p.Output())
		}
	})
	return p
}

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(client(t, addr)).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

func produceN(t *testing.T, cl *kgo.Client, topic string, from, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for i := from; i < from+n; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func consumeN(t *testing.T, addr, topic string, n int) []string {
	t.Helper()
	cl := client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), n, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

func TestProcessKillRestart(t *testing.T) {
	p := startProcess(t, "")
	addr := p.Addr()
	createTopic(t, addr, "kr", 1)
	produceN(t, client(t, addr), "kr", 0, 100)

	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Fatal("running after Kill")
	}
	if err := p.Kill(); !errors.Is(err, faultinject.ErrNotRunning) {
		t.Fatalf("second Kill: %v, want ErrNotRunning", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Addr() != addr {
		t.Fatalf("restarted on %s, want the same address %s", p.Addr(), addr)
	}
	got := consumeN(t, addr, "kr", 100)
	for i, v := range got {
		if v != fmt.Sprintf("v%d", i) {
			t.Fatalf("record %d = %q after restart", i, v)
		}
	}
	if out := p.Output(); strings.Count(out, "--- start:") != 2 || !strings.Contains(out, "signal: killed") {
		t.Fatalf("output does not show two starts and a kill:\n%s", out)
	}
}

func TestProcessPauseResume(t *testing.T) {
	p := startProcess(t, "")
	createTopic(t, p.Addr(), "pause", 1)
	cl := client(t, p.Addr(), kgo.DisableIdempotentWrite(), kgo.RecordDeliveryTimeout(time.Second))
	produceN(t, cl, "pause", 0, 1)

	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "pause", Value: []byte("paused")}).FirstErr()
	cancel()
	if err == nil {
		t.Fatal("a paused broker acknowledged a record")
	}
	if !p.Running() {
		t.Fatal("a paused broker is not running")
	}

	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	produceN(t, cl, "pause", 1, 1)
}

func TestProcessStopIsClean(t *testing.T) {
	p := startProcess(t, "")
	if err := p.Pause(); err != nil { // Stop resumes a paused broker first
		t.Fatal(err)
	}
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, p.Output())
	}
	if !strings.Contains(p.Output(), "shut down cleanly") {
		t.Fatalf("no clean shutdown in the output:\n%s", p.Output())
	}
}

func TestProcessBadFlags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := faultinject.StartBroker(ctx, runnelBin(t), "--data-dir", t.TempDir(), "--no-such-flag")
	if err == nil || !strings.Contains(err.Error(), "exited before listening") || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("StartBroker with a bad flag: %v", err)
	}
}
