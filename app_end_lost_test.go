package runnel_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"
)

// TestAppEndAnswerLostCountsOnce: under exactly-once, a transaction that
// committed but whose End the worker saw fail (the coordinator's answer
// lost, as when its broker dies after deciding) is settled by the group's
// committed offsets, not taken as aborted: word count processes each line
// once and gives the reference counts. Taken as aborted, the worker read
// its input again from the offsets committed before, and counted it twice.
//
// The worker waits for a lost answer until the commit's time is out, and
// then starts its tasks again from their changelogs: that must not run
// under the commit's spent deadline, which once stopped the application
// with "restore: end offsets: context deadline exceeded".
func TestAppEndAnswerLostCountsOnce(t *testing.T) {
	t.Cleanup(runnel.SetCommitTimeout(2 * time.Second))
	addr := startAppBroker(t)
	createTopics(t, addr, 3, "lines", "word-counts")
	var ends, lost atomic.Int64
	var arm atomic.Bool
	app := runApp(t, buildTopology(t, wordCount), func(a *runnel.App) {
		// The first transaction committing offsets after each batch
		// loses its answer.
		runnel.LoseEndAnswers(a, func() bool {
			ends.Add(1)
			if !arm.CompareAndSwap(true, false) {
				return false
			}
			lost.Add(1)
			return true
		})
	}, runnel.ApplicationID("wc-lost"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()),
		runnel.CommitInterval(20*time.Millisecond))
	cl := newTestClient(t, addr)
	var lines []string
	for i := range 6 {
		batch := wordCountLines(uint64(40+i), 100)
		arm.Store(true)
		produceLines(t, cl, len(lines), batch)
		lines = append(lines, batch...)
		waitMetrics(t, "a lost answer per batch", func() bool { return lost.Load() > int64(i) })
	}
	waitCounts(t, addr, countWords(lines))
	t.Logf("%d of %d ends lost their answers; metrics %+v", lost.Load(), ends.Load(), app.Metrics())
	if m := app.Metrics(); m.Aborts != 0 {
		t.Fatalf("%d transactions taken as aborted; every one committed", m.Aborts)
	}
}

// TestAppEndAnswerLostWithoutInput: a transaction that consumed nothing
// (here the wall-clock punctuation of a suppression, emitting final
// results after input stops) whose End the worker saw fail does not stop
// the application. The worker aborts to heal its producer and starts its
// tasks again from their changelogs, which hold the transaction's writes
// when it committed: every window still has exactly one final result.
// Before, the failed End stopped the application.
func TestAppEndAnswerLostWithoutInput(t *testing.T) {
	t.Cleanup(runnel.SetCommitTimeout(2 * time.Second))
	addr := startAppBroker(t)
	createTopics(t, addr, 1, "clicks", "final")
	var ends atomic.Int64
	app := runApp(t, buildTopology(t, wallClockSuppress), func(a *runnel.App) {
		// The first such transaction loses its answer. (How many there
		// are depends on how the windows' wall-clock closes fall.)
		runnel.LoseProducedEndAnswers(a, func() bool { return ends.Add(1) == 1 })
	}, runnel.ApplicationID("lost-produced"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()),
		runnel.CommitInterval(100*time.Millisecond))
	cl := newTestClient(t, addr)
	_, want := produceRecentClicks(t, cl)
	results := waitFinals(t, addr, want)
	if ends.Load() == 0 {
		t.Fatal("no transaction without input ended: the test lost no answer")
	}
	if len(results) != len(want) {
		t.Fatalf("results for %d windows, want %d: %v", len(results), len(want), results)
	}
	for w, n := range results {
		if n != 1 {
			t.Fatalf("window %s has %d final results", w, n)
		}
	}
	if s := app.State(); s == runnel.Error || s == runnel.NotRunning {
		t.Fatalf("application %v, want it running", s)
	}
}
