package runnel_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"go.uber.org/goleak"
)

// The test binary doubles as an application process, so crash tests can
// SIGKILL a real App without building a command first. The variable holds
// the broker address; crashChildEnv+"_DIR" the state directory,
// crashChildEnv+"_WORKERS" the number of workers.
const crashChildEnv = "RUNNEL_TEST_APP_CHILD"

func TestMain(m *testing.M) {
	code := testutil.RunChildOrTests(m, crashChildEnv, func(addr string) int {
		workers, _ := strconv.Atoi(os.Getenv(crashChildEnv + "_WORKERS"))
		return runCrashChild(addr, os.Getenv(crashChildEnv+"_DIR"), workers)
	})
	stopKafkaPeer() // started on first use by kafkaPeerAddr
	if runnelBinaryDir != "" {
		os.RemoveAll(runnelBinaryDir) // 45 MB per run of the package otherwise
	}
	if code == 0 && os.Getenv(crashChildEnv) == "" {
		// Every goroutine an App, its brokers and clients started must be
		// gone once the tests closed them.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// runCrashChild runs the word count under exactly-once, without a cache
// (every count goes to the output), against addr until
// SIGTERM, printing "STARTED" once Start returned and a "METRICS" line
// whenever its counters change.
func runCrashChild(addr, dir string, workers int) int {
	b := stream.NewBuilder()
	slowWordCount(b)
	topo, err := b.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		return 2
	}
	app, err := runnel.NewApp(topo, runnel.ApplicationID("wc"), runnel.Brokers(addr), runnel.StateDir(dir),
		runnel.ProcessingGuarantee(runnel.ExactlyOnce), runnel.CacheBytes(0), runnel.NumWorkers(workers))
	if err != nil {
		fmt.Fprintln(os.Stderr, "new app:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = app.Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 2
	}
	fmt.Println("STARTED")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var last runnel.Metrics
	report := func() {
		if m := app.Metrics(); m != last {
			last = m
			fmt.Printf("METRICS %d %d %d %d\n", m.RecordsProcessed, m.RecordsRestored, m.Commits, m.Aborts)
		}
	}
	for {
		select {
		case <-tick.C:
			report()
		case <-app.Done():
			fmt.Fprintln(os.Stderr, "processing stopped:", app.Close())
			return 1
		case <-sig:
			err := app.Close()
			report()
			if err != nil {
				fmt.Fprintln(os.Stderr, "close:", err)
				return 1
			}
			return 0
		}
	}
}

// slowWordCount is wordCount (same topics and store) spending about a
// millisecond on each line, so that the kills find it processing.
func slowWordCount(b *stream.Builder) {
	lines := stream.From(b, "lines", serde.String, serde.String)
	words := stream.FlatMapValues(lines, func(line string) []string {
		time.Sleep(500 * time.Microsecond) // the work a real application does
		return strings.Fields(strings.ToLower(line))
	})
	counts := stream.GroupBy(words, func(_, w string) string { return w }, stream.Named("words")).
		Count(stream.Materialized("counts"))
	counts.ToStream().To("word-counts")
}

// crashChild is a running application subprocess.
type crashChild struct {
	*testutil.Child
	started chan struct{} // closed on "STARTED"

	mu      sync.Mutex // guards the following
	metrics runnel.Metrics
	changed chan struct{} // closed and replaced when metrics change
}

func startCrashChild(t *testing.T, addr, dir string, workers int) *crashChild {
	t.Helper()
	c := &crashChild{started: make(chan struct{}), changed: make(chan struct{})}
	env := []string{crashChildEnv + "=" + addr, crashChildEnv + "_DIR=" + dir, crashChildEnv + "_WORKERS=" + strconv.Itoa(workers)}
	c.Child = testutil.StartChild(t, env, func(line string) {
		var m runnel.Metrics
		switch {
		case line == "STARTED":
			close(c.started)
		case strings.HasPrefix(line, "METRICS "):
			if _, err := fmt.Sscanf(line, "METRICS %d %d %d %d", &m.RecordsProcessed, &m.RecordsRestored, &m.Commits, &m.Aborts); err == nil {
				c.mu.Lock()
				c.metrics = m
				close(c.changed)
				c.changed = make(chan struct{})
				c.mu.Unlock()
			}
		}
	})
	return c
}

// waitStarted waits for the child's Start to return.
func (c *crashChild) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-c.started:
	case <-c.Done():
		t.Fatal("application process exited before starting")
	case <-time.After(30 * time.Second):
		t.Fatal("application process did not start in 30s")
	}
}

// waitCommits waits until the child has committed n transactions.
func (c *crashChild) waitCommits(t *testing.T, n int64) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		m, changed := c.metrics, c.changed
		c.mu.Unlock()
		if m.Commits >= n {
			return
		}
		select {
		case <-changed:
		case <-c.Done():
			t.Fatal("application process exited")
		case <-deadline:
			t.Fatalf("application process made %d commits in 30s, want %d", m.Commits, n)
		}
	}
}

// stop sends sig and waits for the process to exit; it returns the last
// metrics the process printed.
func (c *crashChild) stop(t *testing.T, sig syscall.Signal) runnel.Metrics {
	t.Helper()
	err := c.Signal(t, sig)
	if sig == syscall.SIGTERM && err != nil {
		t.Fatalf("application process: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.metrics
}

// TestAppSIGKILLDuringProcessingExactOutput: an exactly-once word count killed
// with SIGKILL at random moments, restarted each time on the same state
// directory, ends with the counts of a clean run; its read_committed output
// never shows a count processed twice; and a restarted instance restores
// only the changelog tail above the position committed in its state.
func TestAppSIGKILLDuringProcessingExactOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	testSIGKILLExactOutput(t, 22, 20, 1)
}

// TestAppSIGKILLTwoWorkersExactOutput is the SIGKILL test with two workers in the
// killed process: two group members and two transactional producers die
// at once, and their tasks' state is shared in one Pebble database.
func TestAppSIGKILLTwoWorkersExactOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	testSIGKILLExactOutput(t, 23, 12, 2)
}

func testSIGKILLExactOutput(t *testing.T, seed uint64, kills, workers int) {
	addr := startAppBroker(t)
	createTopics(t, addr, 3, "lines", "word-counts")
	lines := wordCountLines(seed, 3000)
	want := countWords(lines)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(seed, seed))

	positioned := false // a run has committed changelog positions to Pebble
	var restoredTotal int64
	// The runtime processes what one poll returns in one transaction, so
	// the input comes in a chunk before each run: every run has records to
	// be killed in the middle of, and commits between the kills.
	cl := newTestClient(t, addr)
	chunk := len(lines) / (kills + 1)
	for i := range kills {
		produceLines(t, cl, i*chunk, lines[i*chunk:(i+1)*chunk])
		c := startCrashChild(t, addr, dir, workers)
		c.waitStarted(t)
		// The kill moment is the test's random choice, not a wait for an
		// event: after 0 to 2 commits, then anywhere in joining,
		// restoring, processing or committing.
		c.waitCommits(t, int64(rng.IntN(3)))
		<-time.After(time.Duration(rng.IntN(200)) * time.Millisecond)
		// No waiting for the killed member's session to time out: the
		// member is static, and the restart takes its place.
		m := c.stop(t, syscall.SIGKILL)
		total := int64(len(readTopic(t, addr, "wc-counts-changelog")))
		restoredTotal += m.RecordsRestored
		t.Logf("run %d killed: %+v; committed changelog records %d", i, m, total)
		if positioned && total > 0 && m.RecordsRestored >= total {
			t.Fatalf("run %d restored %d of %d changelog records; want only the tail", i, m.RecordsRestored, total)
		}
		// Commits counts a transaction once its positions are in
		// Pebble.
		positioned = positioned || m.Commits >= 1
	}

	produceLines(t, cl, kills*chunk, lines[kills*chunk:])
	c := startCrashChild(t, addr, dir, workers)
	c.waitStarted(t)
	waitCounts(t, addr, want)
	m := c.stop(t, syscall.SIGTERM)
	total := int64(len(readTopic(t, addr, "wc-counts-changelog")))
	restoredTotal += m.RecordsRestored
	t.Logf("final run: %+v; changelog records %d, restored over all runs %d", m, total, restoredTotal)
	if !positioned {
		t.Fatal("no killed run got as far as a commit: kill later")
	}
	if positioned && m.RecordsRestored >= total {
		t.Fatalf("final run restored %d of %d changelog records; want only the tail", m.RecordsRestored, total)
	}

	// Exactly once: with no cache every count goes out, so per word the
	// committed output is 1, 2, 3 … up to the reference count. A record
	// processed twice would show as a repeated count, a lost one or a
	// store rolled back too far as a gap.
	last := map[string]int64{}
	for _, r := range readTopic(t, addr, "word-counts") {
		v, err := decodeInt64(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		w := string(r.Key)
		if v != last[w]+1 {
			t.Fatalf("word %q: count %d at %s[%d]@%d after %d (final %d)", w, v, r.Topic, r.Partition, r.Offset, last[w], want[w])
		}
		last[w] = v
	}
	if !maps.Equal(last, want) {
		t.Fatalf("final counts\n got %v\nwant %v", last, want)
	}
}
