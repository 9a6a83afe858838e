package runnel_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel"
)

// An exactly-once App on a three-broker cluster commits again soon after
// a broker is SIGKILLed and stays down: the dead broker is fenced after
// the session timeout, its leaderships and coordinators move, and the
// App must find them and go on. Each of the three brokers is killed
// in turn (so the group and transaction coordinators' brokers are among
// them) under a steady input; the time from the kill to the App's second
// commit after it is the recovery time, bounded generously.
func TestAppClusterRecoveryAfterBrokerKill(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker process test")
	}
	// A 1 s session timeout: fencing the dead broker is the part of the
	// recovery the App cannot shorten, kept short so the rest shows.
	procs := startProcCluster(t, "--broker-session-timeout", "1s", "--broker-heartbeat-interval", "200ms")
	seeds, cl, adm := wordCountCluster(t, procs)
	app := runApp(t, buildTopology(t, slowWordCount), nil,
		runnel.ApplicationID("wc"), runnel.Brokers(seeds...), runnel.StateDir(t.TempDir()),
		runnel.ProcessingGuarantee(runnel.ExactlyOnce), runnel.CacheBytes(0),
		runnel.CommitInterval(100*time.Millisecond), runnel.ReplicationFactor(3))

	stopInput := steadyInput(t, cl)
	defer stopInput()

	waitCommits(t, app, app.Metrics().Commits+5, 60*time.Second)
	// Generous, for a loaded machine: 2.4-4.2 s measured, 5-7.3 s with
	// franz-go's default metadata refresh and retry backoff.
	const bound = 15 * time.Second
	var worst time.Duration
	for node := 1; node <= 3; node++ {
		coord := groupCoordinator(adm)
		before := app.Metrics().Commits
		killed := time.Now()
		if err := procs[node-1].Kill(); err != nil {
			t.Fatal(err)
		}
		// One commit may have been under way at the kill; the second
		// after it began after it.
		waitCommits(t, app, before+2, 3*time.Minute)
		took := time.Since(killed)
		worst = max(worst, took)
		t.Logf("broker %d killed (group coordinator %d): the app committed again after %v; %+v", node, coord, took.Round(10*time.Millisecond), app.Metrics())
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		err := procs[node-1].Restart(ctx)
		cancel()
		if err != nil {
			t.Fatalf("restart broker %d: %v", node, err)
		}
		waitLeaders(t, adm, "lines", "word-counts")
		waitCommits(t, app, app.Metrics().Commits+5, 2*time.Minute)
	}
	if worst > bound {
		t.Fatalf("the app took %v to commit again after a broker kill, more than %v", worst, bound)
	}
}

// waitCommits waits until the app has made n commits.
func waitCommits(t *testing.T, app *runnel.App, n int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for app.Metrics().Commits < n {
		select {
		case <-app.Done():
			t.Fatalf("the app stopped: %v", app.Close())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app made %d commits in %v, want %d; %+v", app.Metrics().Commits, within, n, app.Metrics())
		}
		time.Sleep(10 * time.Millisecond) // polling a counter
	}
}

// steadyInput produces 20 lines every 50 ms to "lines" until the returned
// function is called.
func steadyInput(t *testing.T, cl *kgo.Client) (stop func()) {
	t.Helper()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			for j := range 20 {
				cl.Produce(context.Background(), &kgo.Record{Topic: "lines", Value: []byte(fmt.Sprintf("steady line %d %d", i, j))}, nil)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}
