package runnel_test

import (
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"
)

// TestAppRestoreDoesNotBlockReadyTasks: while a fresh instance restores its
// counting tasks from their changelog, its tasks with no state to restore
// (splitting lines into words) process at once; the application is
// Running only once every task is restored, and then the counts carry on
// from the restored ones.
func TestAppRestoreDoesNotBlockReadyTasks(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 2, "lines", "word-counts")
	cl := newTestClient(t, addr)
	first, second := wordCountLines(71, 400), wordCountLines(72, 200)

	a := startWordCountWith(t, addr, t.TempDir(), runnel.CacheBytes(0))
	produceLines(t, cl, 0, first)
	waitCounts(t, addr, countWords(first))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	var hold atomic.Bool
	hold.Store(true)
	app := runApp(t, buildTopology(t, wordCount), func(app *runnel.App) { runnel.HoldRestore(app, hold.Load) },
		runnel.ApplicationID("wc"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()),
		runnel.CommitInterval(100*time.Millisecond), runnel.CacheBytes(0))

	produceLines(t, cl, len(first), second)
	// Splitting needs no state: all of the new lines are processed while
	// the counting tasks wait for their restoration.
	waitMetrics(t, "the new lines split", func() bool { return app.Metrics().RecordsProcessed >= int64(len(second)) })
	if s := app.State(); s != runnel.Rebalancing {
		t.Fatalf("state %v with tasks restoring, want REBALANCING", s)
	}
	if got := latestCounts(t, addr); !maps.Equal(got, countWords(first)) {
		t.Fatalf("counts moved while their tasks were restoring:\n got %v\nwant %v", got, countWords(first))
	}
	hold.Store(false)
	waitCounts(t, addr, countWords(append(first, second...)))
	if s := app.State(); s != runnel.Running {
		t.Fatalf("state %v once restored, want RUNNING", s)
	}
	if app.Metrics().RecordsRestored == 0 {
		t.Fatal("the fresh instance restored nothing")
	}
}

// TestAppRestoreCommitDoesNotBlockLoop: a restoration's commit (for a
// large one, the merge of its spilled runs into sstables) runs off the
// worker's loop. While the counting tasks' commits are held, the
// worker's task with no state (splitting lines into words) processes new
// lines, the application is not Running and the counts do not move;
// released, the tasks start and carry on from the restored counts.
func TestAppRestoreCommitDoesNotBlockLoop(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 2, "lines", "word-counts")
	cl := newTestClient(t, addr)
	first, second := wordCountLines(73, 400), wordCountLines(74, 200)

	a := startWordCountWith(t, addr, t.TempDir(), runnel.CacheBytes(0))
	produceLines(t, cl, 0, first)
	waitCounts(t, addr, countWords(first))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	release := make(chan struct{})
	var held atomic.Int32
	app := runApp(t, buildTopology(t, wordCount), func(app *runnel.App) {
		runnel.BeforeRestoreCommit(app, func() {
			held.Add(1)
			<-release
		})
	}, runnel.ApplicationID("wc"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()),
		runnel.CommitInterval(100*time.Millisecond), runnel.CacheBytes(0))
	released := false
	defer func() {
		if !released {
			close(release) // let Close join the commits
		}
	}()

	waitMetrics(t, "both restorations committing", func() bool { return held.Load() == 2 })
	produceLines(t, cl, len(first), second)
	waitMetrics(t, "the new lines split", func() bool { return app.Metrics().RecordsProcessed >= int64(len(second)) })
	if s := app.State(); s != runnel.Rebalancing {
		t.Fatalf("state %v with restorations committing, want REBALANCING", s)
	}
	if got := latestCounts(t, addr); !maps.Equal(got, countWords(first)) {
		t.Fatalf("counts moved while their tasks' restorations were committing:\n got %v\nwant %v", got, countWords(first))
	}
	close(release)
	released = true
	waitCounts(t, addr, countWords(append(first, second...)))
	if s := app.State(); s != runnel.Running {
		t.Fatalf("state %v once restored, want RUNNING", s)
	}
}
