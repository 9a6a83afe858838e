package runnel_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twmb/franz-go/pkg/kadm"
)

// waitMetrics polls app's metrics until ok holds.
func waitMetrics(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling counters, no event to wait on
	}
}

// TestAppCooperativeRebalance: a second instance joining takes half of
// the tasks, and the first closes only those: the tasks it keeps go on
// running through the rebalance, with no transaction aborted.
func TestAppCooperativeRebalance(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 6, "lines", "word-counts")
	cl := newTestClient(t, addr)
	first, second := wordCountLines(31, 300), wordCountLines(32, 300)

	a := startWordCountWith(t, addr, t.TempDir())
	produceLines(t, cl, 0, first)
	waitCounts(t, addr, countWords(first))
	if m := a.Metrics(); m.ActiveTasks != 12 || m.TasksClosed != 0 {
		t.Fatalf("one instance: %+v, want 12 active tasks (2 sub-topologies x 6), none closed", m)
	}

	b := startWordCountWith(t, addr, t.TempDir())
	waitMetrics(t, "6 tasks on each instance", func() bool {
		return a.Metrics().ActiveTasks == 6 && b.Metrics().ActiveTasks == 6
	})
	produceLines(t, cl, len(first), second)
	waitCounts(t, addr, countWords(append(first, second...)))
	ma := a.Metrics()
	t.Logf("first instance after the join: %+v", ma)
	if ma.TasksClosed != 6 {
		t.Fatalf("the first instance closed %d tasks; want only the 6 that moved", ma.TasksClosed)
	}
	if ma.Aborts != 0 {
		t.Fatalf("the first instance aborted %d transactions in a rebalance", ma.Aborts)
	}
}

// TestAppStandbyReplicas: with one standby replica each instance keeps a
// warm copy of the other's stateful tasks; when one instance leaves, the
// other takes its tasks over restoring nothing, and the counts go on.
func TestAppStandbyReplicas(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 2, "lines", "word-counts")
	cl := newTestClient(t, addr)
	first, second := wordCountLines(41, 300), wordCountLines(42, 200)

	a := startWordCountWith(t, addr, t.TempDir(), runnel.StandbyReplicas(1), runnel.CacheBytes(0))
	b := startWordCountWith(t, addr, t.TempDir(), runnel.StandbyReplicas(1), runnel.CacheBytes(0))
	waitMetrics(t, "2 tasks on each instance", func() bool {
		return a.Metrics().ActiveTasks == 2 && b.Metrics().ActiveTasks == 2
	})
	produceLines(t, cl, 0, first)
	waitCounts(t, addr, countWords(first))
	changelog := int64(len(readTopic(t, addr, "wc-counts-changelog")))
	// Each of the two count tasks has its standby on the other instance,
	// which reads its whole changelog partition.
	waitMetrics(t, "standbys caught up", func() bool {
		ma, mb := a.Metrics(), b.Metrics()
		return ma.StandbyTasks == 1 && mb.StandbyTasks == 1 && ma.StandbyRecords+mb.StandbyRecords == changelog
	})
	restoredBefore := a.Metrics().RecordsRestored
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitMetrics(t, "the first instance running every task", func() bool { return a.Metrics().ActiveTasks == 4 })
	produceLines(t, cl, len(first), second)
	waitCounts(t, addr, countWords(append(first, second...)))
	ma := a.Metrics()
	t.Logf("changelog records %d; survivor %+v", changelog, ma)
	if got := ma.RecordsRestored - restoredBefore; got != 0 {
		t.Fatalf("the survivor restored %d changelog records taking over; its standby had them all", got)
	}
}

// TestAppNumWorkers: three workers in one instance share the tasks and
// give the reference counts.
func TestAppNumWorkers(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 6, "lines", "word-counts")
	lines := wordCountLines(51, 600)
	app := startWordCountWith(t, addr, t.TempDir(), runnel.NumWorkers(3))
	produceLines(t, newTestClient(t, addr), 0, lines)
	waitCounts(t, addr, countWords(lines))
	described, err := kadm.NewClient(newTestClient(t, addr)).DescribeGroups(context.Background(), "wc")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(described["wc"].Members); n != 3 {
		t.Fatalf("%d group members, want one per worker", n)
	}
	// The counts can be complete while a late rebalance (a worker
	// joining after the others began) still moves tasks between workers.
	waitMetrics(t, "all 12 tasks active", func() bool { return app.Metrics().ActiveTasks == 12 })
}

// TestAppLeaveGroupOnClose: by default a closed instance leaves the group
// at once; with LeaveGroupOnClose(false) its static member stays, for a
// restart to take back without a rebalance, and the restart does.
func TestAppLeaveGroupOnClose(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 2, "lines", "word-counts")
	adm := kadm.NewClient(newTestClient(t, addr))
	members := func() int {
		d, err := adm.DescribeGroups(context.Background(), "wc")
		if err != nil {
			t.Fatal(err)
		}
		return len(d["wc"].Members)
	}
	lines := wordCountLines(61, 100)
	cl := newTestClient(t, addr)

	a := startWordCountWith(t, addr, t.TempDir())
	waitMetrics(t, "tasks", func() bool { return a.Metrics().ActiveTasks == 4 })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n := members(); n != 0 {
		t.Fatalf("%d members after Close, want 0", n)
	}

	dir := t.TempDir()
	b := startWordCountWith(t, addr, dir, runnel.LeaveGroupOnClose(false))
	waitMetrics(t, "tasks", func() bool { return b.Metrics().ActiveTasks == 4 })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := members(); n != 1 {
		t.Fatalf("%d members after Close with LeaveGroupOnClose(false), want 1", n)
	}
	b2 := startWordCountWith(t, addr, dir, runnel.LeaveGroupOnClose(false))
	produceLines(t, cl, 0, lines)
	waitCounts(t, addr, countWords(lines))
	if n := members(); n != 1 {
		t.Fatalf("%d members after the restart, want the one static member", n)
	}
	if m := b2.Metrics(); m.ActiveTasks != 4 {
		t.Fatalf("restarted: %+v", m)
	}
}

// TestAppTaskGaugesFollowTasks: when tasks move to a new instance, the
// first one stops reporting their lag.
func TestAppTaskGaugesFollowTasks(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 2, "lines", "word-counts")
	reg := prometheus.NewRegistry()
	a := startWordCountWith(t, addr, t.TempDir(), runnel.MetricsRegisterer(reg))
	waitMetrics(t, "4 tasks", func() bool { return a.Metrics().ActiveTasks == 4 })
	produceLines(t, newTestClient(t, addr), 0, wordCountLines(81, 50))
	waitMetrics(t, "a lag gauge per task", func() bool { return len(series(t, reg, "runnel_stream_consumer_lag")) == 4 })
	b := startWordCountWith(t, addr, t.TempDir())
	waitMetrics(t, "2 tasks on each instance", func() bool {
		return a.Metrics().ActiveTasks == 2 && b.Metrics().ActiveTasks == 2
	})
	if n := len(series(t, reg, "runnel_stream_consumer_lag")); n != 2 {
		t.Fatalf("the first instance reports the lag of %d tasks, want its 2", n)
	}
}

// TestAppRunningWhenEveryWorkerRuns: with three workers on four tasks, one
// worker has only a task without state and runs at once; the application
// is Running only once all three run their tasks: the workers whose
// counting tasks restore keep it Rebalancing.
func TestAppRunningWhenEveryWorkerRuns(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 2, "lines", "word-counts")
	lines := wordCountLines(91, 300)
	a := startWordCountWith(t, addr, t.TempDir(), runnel.CacheBytes(0))
	produceLines(t, newTestClient(t, addr), 0, lines)
	waitCounts(t, addr, countWords(lines))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	var hold atomic.Bool
	hold.Store(true)
	var mu sync.Mutex
	var states []runnel.State
	app := runApp(t, buildTopology(t, wordCount), func(app *runnel.App) { runnel.HoldRestore(app, hold.Load) },
		runnel.ApplicationID("wc"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()), runnel.NumWorkers(3),
		runnel.StateListener(func(_, s runnel.State) {
			mu.Lock()
			states = append(states, s)
			mu.Unlock()
		}))
	// Both workers have their tasks; the counting tasks restore.
	waitMetrics(t, "tasks assigned", func() bool { return app.Metrics().ActiveTasks == 4 })
	mu.Lock()
	before := slices.Clone(states)
	mu.Unlock()
	if s := app.State(); s != runnel.Rebalancing || slices.Contains(before, runnel.Running) {
		t.Fatalf("state %v (states so far %v) while a worker's tasks restore, want REBALANCING throughout", s, before)
	}
	hold.Store(false)
	waitMetrics(t, "running", func() bool { return app.State() == runnel.Running })
}
