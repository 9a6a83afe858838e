package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/bench/internal/procstat"
	"github.com/runnel-dev/runnel/internal/nexmark"
	"github.com/twmb/franz-go/pkg/kadm"
)

// The Kafka Streams side of the Nexmark comparison (-kstreams): the same
// queries written for Kafka Streams (bench/kstreams, a Maven project built
// here on first use), run after Runnel's on the same broker and the same
// input topics, as a JVM process of their own.
//
// A Kafka Streams application has no "records processed" counter a
// benchmark can read, so its end is found from the outside, the way an
// operator would: its group's committed offsets. The run is done when the
// committed offsets cover every input record and have not moved for 20
// commit intervals (at least 3 s) — repartition topics included, whose
// ends may hold transaction markers no commit covers — and the time
// measured runs from the application's first RUNNING state to the last
// change of its committed offsets. That end is later than its last
// record processed by up to a commit interval, and the start later than
// Runnel's (which includes joining the group): both favour Kafka Streams
// a little. CPU is the JVM's plus this process's (the broker's), over the
// same span, as Runnel's figure is this process's (broker and app).

// kstreamsSettings says how the Kafka Streams runs are measured.
const kstreamsSettings = "Kafka Streams 4.3.1 (bench/kstreams, one JVM, -Xmx1g, one stream thread, default cache) on the same broker and input, after Runnel's run of each query: " +
	"from its first RUNNING state to the last change of its group's committed offsets (which then cover every input record and stay put for 20 commit intervals); CPU is the JVM's and the broker's; " +
	"RSS is the largest resident set sampled every 100 ms, the JVM's for Kafka Streams, this process's (broker and app) for Runnel; " +
	"same results: both output topics read in full (read_committed), streams (q0-q2) compared as multisets of records, tables (q3-q8) as the last value per key"

// maxNexmarkEOSCost is issue 17's target: exactly-once costs Runnel at
// most 10% of at-least-once's throughput on every Nexmark query.
const maxNexmarkEOSCost = 0.10

// kstreamsQueries are the queries bench/kstreams implements.
var kstreamsQueries = []string{"q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8"}

// kstreamsDir finds bench/kstreams from the working directory (the bench
// module or the repository root).
func kstreamsDir() (string, error) {
	for _, d := range []string{"kstreams", "bench/kstreams", "../kstreams"} {
		if _, err := os.Stat(filepath.Join(d, "pom.xml")); err == nil {
			return filepath.Abs(d)
		}
	}
	return "", errors.New("-kstreams: bench/kstreams/pom.xml not found; run from the bench module")
}

// buildKStreams builds the Kafka Streams queries with Maven unless the jar
// is newer than every source, and returns the java classpath.
func (b *bench) buildKStreams() (string, error) {
	dir, err := kstreamsDir()
	if err != nil {
		return "", err
	}
	jar := filepath.Join(dir, "target", "kstreams-nexmark-1.jar")
	classpath := jar + string(os.PathListSeparator) + filepath.Join(dir, "target", "lib", "*")
	if st, err := os.Stat(jar); err == nil && !newerThan(dir, st.ModTime()) {
		return classpath, nil
	}
	b.prog.printf("kstreams: building %s with Maven", dir)
	cmd := exec.CommandContext(b.ctx, "mvn", "-B", "-q", "package")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kstreams: mvn package: %v\n%s", err, out)
	}
	return classpath, nil
}

// newerThan reports whether pom.xml or a file under src is newer than t.
func newerThan(dir string, t time.Time) bool {
	newer := false
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || newer {
			return nil
		}
		if d.IsDir() && d.Name() == "target" {
			return filepath.SkipDir
		}
		if info, err := d.Info(); err == nil && !d.IsDir() && info.ModTime().After(t) {
			newer = true
		}
		return nil
	})
	return newer
}

// ksApp is a running Kafka Streams application: its JVM, RUNNING.
type ksApp struct {
	id     string
	pid    int
	exited chan error // the JVM's exit, once
	cancel context.CancelFunc
	stderr *strings.Builder
}

// startKStreams starts the Kafka Streams version of q under g as
// application id, writing to out, on the broker the nexmark workload
// uses, and returns once it reports RUNNING. The caller must stop it.
func (b *bench) startKStreams(classpath string, q nexmark.Query, g runnel.Guarantee, id, out string) (*ksApp, error) {
	interval := nexmarkInterval
	if b.commitInterval > 0 {
		interval = b.commitInterval
	}
	ctx, cancel := context.WithCancel(b.ctx)
	cmd := exec.CommandContext(ctx, "java", "-Xmx1g", "-cp", classpath, "dev.runnel.bench.NexmarkStreams",
		"bootstrap="+b.nexmarkAddr(), "query="+q.Name, "guarantee="+g.String(), "app-id="+id,
		"state-dir="+b.nexmarkStateDir("kstreams-state"), "commit-interval-ms="+strconv.FormatInt(interval.Milliseconds(), 10),
		"output="+out)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	dieWithParent(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	k := &ksApp{id: id, exited: make(chan error, 1), cancel: cancel, stderr: &strings.Builder{}}
	cmd.Stderr = k.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("kstreams: start java: %w", err)
	}
	k.pid = cmd.Process.Pid
	running := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "RUNNING" {
				close(running)
				break
			}
		}
		io.Copy(io.Discard, stdout)
		k.exited <- cmd.Wait()
	}()
	select {
	case <-running:
		return k, nil
	case err := <-k.exited:
		k.exited <- err
		cancel()
		return nil, fmt.Errorf("kstreams %s: exited before RUNNING: %v\n%s", id, err, tail(k.stderr.String()))
	case <-time.After(2 * time.Minute):
		k.stop()
		return nil, fmt.Errorf("kstreams %s: not RUNNING after 2 minutes\n%s", id, tail(k.stderr.String()))
	}
}

// stop ends the JVM with SIGTERM (its shutdown hook closes the app) and
// waits for it.
func (k *ksApp) stop() error {
	k.cancel()
	err := <-k.exited
	k.exited <- err
	var ee *exec.ExitError
	// Stopped by our SIGTERM: killed by it, or the JVM's exit status
	// for it (128+15) after its shutdown hook closed the app.
	if errors.As(err, &ee) && (ee.ProcessState.Sys().(syscall.WaitStatus).Signaled() || ee.ExitCode() == 128+int(syscall.SIGTERM)) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("kstreams %s: %v\n%s", k.id, err, tail(k.stderr.String()))
	}
	return nil
}

// runKStreams runs the Kafka Streams version of q under g over the input
// Runnel's run read.
func (b *bench) runKStreams(classpath string, q nexmark.Query, g runnel.Guarantee, input int64) (nexmarkResult, error) {
	res := nexmarkResult{query: q.Name, guarantee: g, input: input, processed: -1, broker: b.nexTarget.name}
	id := "kstreams-" + q.Name + "-" + guaranteeTag(g)
	out := id + "-out"
	res.output = out
	if err := b.createTopics(out); err != nil {
		return res, err
	}
	interval := nexmarkInterval
	if b.commitInterval > 0 {
		interval = b.commitInterval
	}
	k, err := b.startKStreams(classpath, q, g, id, out)
	if err != nil {
		return res, err
	}
	defer k.stop()
	pid := k.pid
	start, self0 := time.Now(), b.nexmarkCPU()
	java0, _ := procstat.CPU(pid)

	quiet := max(20*interval, 3*time.Second)
	var (
		lastSum    int64 = -1
		lastChange       = start
		lastReport       = start
		lastRSS    time.Time
	)
	for {
		committed, covered, err := b.groupProgress(id, q.Inputs)
		now := time.Now()
		if now.Sub(lastRSS) >= 100*time.Millisecond {
			lastRSS = now
			if rss, err := procRSS(pid); err == nil {
				res.rss = max(res.rss, rss)
			}
		}
		if err == nil && committed != lastSum {
			lastSum, lastChange = committed, now
			java, _ := procstat.CPU(pid)
			res.elapsed, res.cpu = now.Sub(start), java-java0+b.nexmarkCPU()-self0
		}
		if err == nil && covered && now.Sub(lastChange) >= quiet {
			break
		}
		if now.Sub(lastReport) >= 5*time.Second {
			lastReport = now
			b.prog.printf("  kstreams %s: committed offsets sum %d (inputs covered: %v)", id, committed, covered)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case err := <-k.exited:
			k.exited <- err
			return res, fmt.Errorf("kstreams %s: exited: %v\n%s", id, err, tail(k.stderr.String()))
		case <-b.ctx.Done():
			return res, b.ctx.Err()
		}
	}
	return res, k.stop()
}

// groupProgress returns the sum of group's committed offsets over every
// topic it consumes, and whether they cover the ends of inputs.
func (b *bench) groupProgress(group string, inputs []string) (sum int64, covered bool, err error) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	offs, err := b.adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, false, err
	}
	ends, err := b.adm.ListEndOffsets(ctx, inputs...)
	if err != nil {
		return 0, false, err
	}
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	covered = true
	ends.Each(func(e kadm.ListedOffset) {
		o, ok := offs.Lookup(e.Topic, e.Partition)
		if !ok || o.At < e.Offset {
			covered = false
		}
	})
	return sum, covered, nil
}

// tail is the last lines of a process's output, for an error.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// runnelRun is Runnel's run of the query and guarantee k ran.
func (b *bench) runnelRun(k nexmarkResult) (nexmarkResult, bool) {
	i := slices.IndexFunc(b.nexmarks, func(r nexmarkResult) bool {
		return r.broker == k.broker && r.query == k.query && r.guarantee == k.guarantee
	})
	if i < 0 {
		return nexmarkResult{}, false
	}
	return b.nexmarks[i], true
}

// kstreamsTable compares each query and guarantee Kafka Streams ran with
// Runnel's run of it. CPU µs per event is also CPU seconds per million
// events.
func (b *bench) kstreamsTable() *table {
	t := &table{header: []string{"broker", "query", "guarantee", "Kafka Streams events/s", "Runnel events/s", "Runnel / Kafka Streams",
		"Kafka Streams CPU s per M events", "Runnel CPU s per M events", "CPU ratio", "Kafka Streams RSS MB", "Runnel RSS MB", "same results"}}
	for _, k := range b.kstreams {
		r, ok := b.runnelRun(k)
		if !ok {
			continue
		}
		same := "yes"
		if !k.same {
			same = "NO"
		}
		t.add(k.broker, k.query, guaranteeName(k.guarantee), fmt.Sprintf("%.0f", k.eventsPerSec()), fmt.Sprintf("%.0f", r.eventsPerSec()),
			fmt.Sprintf("%.2fx", r.eventsPerSec()/k.eventsPerSec()), fmt.Sprintf("%.1f", k.cpuPerEvent()), fmt.Sprintf("%.1f", r.cpuPerEvent()),
			fmt.Sprintf("%.2fx", r.cpuPerEvent()/k.cpuPerEvent()), fmt.Sprintf("%.0f", float64(k.rss)/1e6), fmt.Sprintf("%.0f", float64(r.rss)/1e6), same)
	}
	return t
}

// kstreamsChecks are the result checks of the Kafka Streams runs, one
// line each.
func (b *bench) kstreamsChecks() []string {
	var lines []string
	for _, k := range b.kstreams {
		lines = append(lines, fmt.Sprintf("%s %s on %s: results the same as Runnel's: %v (%s)", k.query, guaranteeName(k.guarantee), k.broker, k.same, k.check))
	}
	return lines
}

// eosCosts says, per query both engines ran under both guarantees, what
// exactly-once costs each of them in throughput (issue 17's target for
// Runnel: at most 10%).
func (b *bench) eosCosts() []string {
	find := func(rs []nexmarkResult, broker, query string, g runnel.Guarantee) (nexmarkResult, bool) {
		i := slices.IndexFunc(rs, func(r nexmarkResult) bool { return r.broker == broker && r.query == query && r.guarantee == g })
		if i < 0 {
			return nexmarkResult{}, false
		}
		return rs[i], true
	}
	// cost is exactly-once's cost in events/s and in CPU per event, in
	// percent: on a shared machine the second moves far less with the
	// load.
	cost := func(rs []nexmarkResult, broker, query string) (rate, cpu float64, ok bool) {
		alo, ok1 := find(rs, broker, query, runnel.AtLeastOnce)
		eos, ok2 := find(rs, broker, query, runnel.ExactlyOnce)
		if !ok1 || !ok2 {
			return 0, 0, false
		}
		return (1 - eos.eventsPerSec()/alo.eventsPerSec()) * 100, (eos.cpuPerEvent()/alo.cpuPerEvent() - 1) * 100, true
	}
	var lines []string
	for _, br := range b.nexmarkBrokers {
		for _, q := range b.nexmarkQueries {
			rc, rcpu, ok := cost(b.nexmarks, br, q)
			if !ok {
				continue
			}
			verdict := "MET"
			if rc > maxNexmarkEOSCost*100 {
				verdict = "NOT MET"
			}
			name := q
			if len(b.nexmarkBrokers) > 1 {
				name += " on " + br
			}
			line := fmt.Sprintf("%s: exactly-once costs Runnel %.0f%% of at-least-once's events/s (target at most %.0f%%: %s) and %+.0f%% CPU per event",
				name, rc, maxNexmarkEOSCost*100, verdict, rcpu)
			if kc, kcpu, ok := cost(b.kstreams, br, q); ok {
				line += fmt.Sprintf("; Kafka Streams %.0f%% and %+.0f%%", kc, kcpu)
			}
			lines = append(lines, line)
		}
	}
	return lines
}
