package faultinject_test

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/faultinject"
	"github.com/runnel-dev/runnel/internal/history"
)

// faultRuns is the number of faults a campaign injects: small by default
// so `go test` stays short, RUNNEL_FAULT_RUNS for a long campaign.
func faultRuns(t *testing.T, short int) int {
	t.Helper()
	v := os.Getenv("RUNNEL_FAULT_RUNS")
	if v == "" {
		return short
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("RUNNEL_FAULT_RUNS=%q: want a positive count", v)
	}
	return n
}

// faultRand is seeded from RUNNEL_FAULT_SEED, or the clock; the seed is
// logged so a failing campaign can be replayed.
func faultRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("RUNNEL_FAULT_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("RUNNEL_FAULT_SEED=%q: %v", v, err)
		}
		seed = s
	}
	t.Logf("RUNNEL_FAULT_SEED=%d", seed)
	// Again at the end of a failure, after the brokers' output (cleanups
	// run last registered first, and this one comes before the cluster's).
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay with RUNNEL_FAULT_SEED=%d", seed)
		}
	})
	return rand.New(rand.NewPCG(seed, seed))
}

// quickRecovery makes clients find a restarted broker soon: a short
// retry backoff, and metadata refreshed at most every 100 ms rather than
// franz-go's default 5 s.
var quickRecovery = []kgo.Opt{
	kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
	kgo.MetadataMinAge(100 * time.Millisecond),
}

// waitAcked polls until the load has at least n acknowledged sends.
func waitAcked(t *testing.T, l *history.Load, n int64, p *faultinject.Process) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for l.Acked() < n {
		if time.Now().After(deadline) {
			out := ""
			if p != nil {
				out = p.Output()
			}
			t.Fatalf("load stuck at %d acked (%d failed), want %d\n%s", l.Acked(), l.Failed(), n, out)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// The single-node campaign: the broker process is SIGKILLed at random
// points under idempotent acks=all load and restarted on its data dir.
// Every acknowledged record must be read back once, at its offset, and
// nothing a consumer read may disappear.
func TestCampaignKillUnderLoad(t *testing.T) {
	runs := faultRuns(t, 3)
	rng := faultRand(t)
	p := startProcess(t, "")
	createTopic(t, p.Addr(), "campaign", 3)

	var rec history.Recorder
	load, err := history.StartLoad(history.LoadConfig{
		Brokers:    []string{p.Addr()},
		Topic:      "campaign",
		Acks:       -1,
		Idempotent: true,
		Producers:  2,
		Consume:    true,
		ClientOpts: quickRecovery,
	}, &rec)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			load.Stop(0)
		}
	}()

	for i := 0; i < runs; i++ {
		// A random point: somewhere in the next 50 to 500 acks.
		waitAcked(t, load, load.Acked()+50+rng.Int64N(450), p)
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := p.Restart(ctx)
		cancel()
		if err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
	}
	// The load carries on after the last restart.
	waitAcked(t, load, load.Acked()+100, p)
	load.Stop(30 * time.Second)
	stopped = true

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := history.ReadAll(ctx, &rec, []string{p.Addr()}, "campaign"); err != nil {
		t.Fatal(err)
	}
	rep := history.Check(rec.History(), history.Options{Idempotent: true})
	t.Logf("%d kills: %s", runs, rep.Summary())
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if rep.AckedAndRead == 0 || rep.AckedAndRead != rep.Acked {
		t.Fatalf("read back %d of %d acknowledged", rep.AckedAndRead, rep.Acked)
	}
}

// The checker must be able to fail: acks=0 sends through a link that
// drops every byte to the broker are "acknowledged" by the client and
// never written, and the check reports them lost.
func TestCampaignReportsLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	createTopic(t, b.Addr(), "lossy", 2)
	link := newProxy(t, b.Addr())

	var rec history.Recorder
	load, err := history.StartLoad(history.LoadConfig{
		Brokers:    []string{link.Addr()},
		Topic:      "lossy",
		Acks:       0,
		ClientOpts: []kgo.Opt{kgo.Dialer(faultinject.RouteDialer(map[string]string{b.Addr(): link.Addr()}))},
	}, &rec)
	if err != nil {
		t.Fatal(err)
	}
	waitAcked(t, load, 200, nil)
	link.Drop(faultinject.Upstream)
	dropFrom := load.Acked()
	// The fault must bite: wait until the proxy has discarded sends.
	waitFor(t, "sends to be dropped", func() bool { return link.Dropped(faultinject.Upstream) > 0 })
	waitAcked(t, load, load.Acked()+500, nil)
	t.Logf("dropped %d bytes of sends", link.Dropped(faultinject.Upstream))
	link.Heal()
	waitAcked(t, load, load.Acked()+200, nil)
	load.Stop(30 * time.Second)

	if err := history.ReadAll(ctx, &rec, []string{b.Addr()}, "lossy"); err != nil {
		t.Fatal(err)
	}
	rep := history.Check(rec.History(), history.Options{})
	t.Logf("acks=0 with a one-way link: %s", rep.Summary())
	if len(rep.Lost) == 0 || rep.Err() == nil {
		t.Fatalf("the checker found no loss in a run that dropped %d sends", load.Acked()-dropFrom)
	}
	if len(rep.Inconsistent) != 0 || len(rep.Gone) != 0 {
		t.Fatalf("loss reported as something else: %v", rep.Err())
	}
}

// The checker fails on the broker's own loss too: after a kill, the tail
// of every segment a partition is writing is cut off, as a disk that
// acknowledged writes it never kept would; the broker recovers to the
// last whole batch, and the acknowledged records past it are reported
// lost, and the ones an earlier read saw, gone.
func TestCampaignReportsLostTail(t *testing.T) {
	dir := t.TempDir()
	p := startProcess(t, dir)
	createTopic(t, p.Addr(), "torn", 2)

	var rec history.Recorder
	load, err := history.StartLoad(history.LoadConfig{
		Brokers: []string{p.Addr()}, Topic: "torn", Acks: -1, Idempotent: true,
	}, &rec)
	if err != nil {
		t.Fatal(err)
	}
	waitAcked(t, load, 500, p)
	load.Stop(30 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := history.ReadAll(ctx, &rec, []string{p.Addr()}, "torn"); err != nil {
		t.Fatal(err)
	}
	if err := history.Check(rec.History(), history.Options{Idempotent: true}).Err(); err != nil {
		t.Fatalf("before the damage: %v", err)
	}

	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if n := tearActiveSegments(t, dir, "torn"); n == 0 {
		t.Fatalf("no segment of topic torn under %s", dir)
	}
	if err := p.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := history.ReadAll(ctx, &rec, []string{p.Addr()}, "torn"); err != nil {
		t.Fatal(err)
	}
	rep := history.Check(rec.History(), history.Options{Idempotent: true})
	t.Logf("torn tails: %s", rep.Summary())
	if len(rep.Lost) == 0 || len(rep.Gone) == 0 {
		t.Fatalf("the checker missed the cut-off records: %s", rep.Summary())
	}
}

// tearActiveSegments cuts each of topic's partitions' newest segment
// (its *.log file with the highest base offset) to half its records, and
// returns how many it cut.
func tearActiveSegments(t *testing.T, dataDir, topic string) int {
	t.Helper()
	newest := map[string]string{} // partition directory -> newest segment
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		parent := filepath.Base(filepath.Dir(path))
		if d.IsDir() || !strings.HasPrefix(parent, topic+"-") || !strings.HasSuffix(path, ".log") {
			return nil
		}
		dir := filepath.Dir(path)
		if path > newest[dir] { // names are zero-padded base offsets
			newest[dir] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, seg := range newest {
		_, end := segmentBatches(t, seg)
		if err := os.Truncate(seg, int64(end/2)); err != nil {
			t.Fatal(err)
		}
	}
	return len(newest)
}

// The single-node campaign with every fault the harness has: the client
// reaches the broker process through a proxy, and each fault is, at
// random, a SIGKILL and restart, a pause, a cut link, a one-way link
// either way (requests lost, or answers lost so the idempotent producer
// must retry a batch the broker already wrote) or a slow link. The
// faults last a random 20-200 ms of wall time; each must leave the load
// making progress once healed.
func TestCampaignMixedFaults(t *testing.T) {
	runs := faultRuns(t, 6)
	rng := faultRand(t)
	p := startProcess(t, "")
	createTopic(t, p.Addr(), "mixed", 3)
	link := newProxy(t, p.Addr())

	var rec history.Recorder
	load, err := history.StartLoad(history.LoadConfig{
		Brokers:    []string{link.Addr()},
		Topic:      "mixed",
		Acks:       -1,
		Idempotent: true,
		Producers:  2,
		Consume:    true,
		ClientOpts: append([]kgo.Opt{kgo.Dialer(faultinject.RouteDialer(map[string]string{p.Addr(): link.Addr()}))}, quickRecovery...),
	}, &rec)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			load.Stop(0)
		}
	}()

	faults := []string{"kill", "pause", "cut", "drop-upstream", "drop-downstream", "delay"}
	count := map[string]int{}
	for i := 0; i < runs; i++ {
		waitAcked(t, load, load.Acked()+20+rng.Int64N(200), p)
		fault := faults[rng.IntN(len(faults))]
		count[fault]++
		hold := time.Duration(20+rng.IntN(180)) * time.Millisecond
		switch fault {
		case "kill":
			if err := p.Kill(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			err := p.Restart(ctx)
			cancel()
			if err != nil {
				t.Fatalf("restart: %v", err)
			}
		case "pause":
			if err := p.Pause(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(hold) // the fault's length, not a wait for an event
			if err := p.Resume(); err != nil {
				t.Fatal(err)
			}
		case "cut":
			link.Cut()
			time.Sleep(hold)
			link.Heal()
		case "drop-upstream", "drop-downstream":
			dir := faultinject.Upstream
			if fault == "drop-downstream" {
				dir = faultinject.Downstream
			}
			before := link.Dropped(dir)
			link.Drop(dir)
			waitFor(t, fault+" to drop bytes", func() bool { return link.Dropped(dir) > before })
			link.Heal()
		case "delay":
			link.Delay(faultinject.Upstream, hold)
			link.Delay(faultinject.Downstream, hold)
			waitAcked(t, load, load.Acked()+10, p) // progress, slowly
			link.Heal()
		}
	}
	waitAcked(t, load, load.Acked()+100, p)
	load.Stop(30 * time.Second)
	stopped = true

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := history.ReadAll(ctx, &rec, []string{p.Addr()}, "mixed"); err != nil {
		t.Fatal(err)
	}
	rep := history.Check(rec.History(), history.Options{Idempotent: true})
	t.Logf("%d faults %v: %s", runs, count, rep.Summary())
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if rep.AckedAndRead == 0 || rep.AckedAndRead != rep.Acked {
		t.Fatalf("read back %d of %d acknowledged", rep.AckedAndRead, rep.Acked)
	}
}

// The duplicate check fails a run that needs idempotence and lacks it: a
// producer without idempotence loses the broker's answers to a one-way
// link, retries batches the broker already wrote, and the read-back holds
// them twice. Allowed for that producer, reported for an idempotent one.
func TestCampaignReportsDuplicates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	createTopic(t, b.Addr(), "twice", 1)
	link := newProxy(t, b.Addr())

	var rec history.Recorder
	load, err := history.StartLoad(history.LoadConfig{
		Brokers: []string{link.Addr()}, Topic: "twice", Acks: -1, Idempotent: false,
		ClientOpts: append([]kgo.Opt{kgo.Dialer(faultinject.RouteDialer(map[string]string{b.Addr(): link.Addr()}))}, quickRecovery...),
	}, &rec)
	if err != nil {
		t.Fatal(err)
	}
	waitAcked(t, load, 200, nil)
	// No consumer shares the link and metadata is fresh, so what comes
	// back down is produce answers: dropped, they are batches written
	// and not acknowledged.
	link.Drop(faultinject.Downstream)
	waitFor(t, "answers to be dropped", func() bool { return link.Dropped(faultinject.Downstream) > 0 })
	link.Heal()
	t.Logf("dropped %d bytes of answers", link.Dropped(faultinject.Downstream))
	waitAcked(t, load, load.Acked()+200, nil)
	load.Stop(30 * time.Second)

	if err := history.ReadAll(ctx, &rec, []string{b.Addr()}, "twice"); err != nil {
		t.Fatal(err)
	}
	allowed := history.Check(rec.History(), history.Options{Idempotent: false})
	t.Logf("a non-idempotent producer behind a one-way link: %s", allowed.Summary())
	if err := allowed.Err(); err != nil {
		t.Fatalf("duplicates of a non-idempotent producer fail the run: %v", err)
	}
	claimed := history.Check(rec.History(), history.Options{Idempotent: true})
	if len(claimed.Duplicates) == 0 || claimed.Err() == nil {
		t.Fatalf("no duplicates reported after retried batches: %s", claimed.Summary())
	}
}
