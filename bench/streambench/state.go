package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/topology"
)

// child is the restart workload's application process.
type child struct {
	cmd    *exec.Cmd
	start  time.Time     // just before the process was started
	exited chan struct{} // closed once its stdout is drained

	mu      sync.Mutex // guards the following
	events  []event
	metrics stream.Metrics
	changed chan struct{} // closed and replaced on every new line
}

// event is something the child reported, at a time since its start.
type event struct {
	at     time.Duration
	name   string
	detail string
}

// startChild starts this binary as the child application on stateDir.
func (b *bench) startChild(stateDir, profile string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"=1", childBrokerEnv+"="+b.broker.Addr(), childDirEnv+"="+stateDir)
	if profile != "" {
		cmd.Env = append(cmd.Env, childProfileEnv+"="+profile)
	}
	cmd.Stderr = os.Stderr
	dieWithParent(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, exited: make(chan struct{}), changed: make(chan struct{})}
	c.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go c.read(stdout)
	return c, nil
}

func (c *child) read(stdout interface{ Read([]byte) (int, error) }) {
	defer close(c.exited)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		c.mu.Lock()
		switch f := strings.SplitN(line, " ", 4); {
		case f[0] == "EV" && len(f) >= 3:
			ns, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				break
			}
			e := event{at: time.Unix(0, ns).Sub(c.start), name: f[2]}
			if len(f) == 4 {
				e.detail = f[3]
			}
			c.events = append(c.events, e)
		case f[0] == "METRICS":
			var m stream.Metrics
			if _, err := fmt.Sscanf(line, "METRICS %d %d %d %d", &m.RecordsProcessed, &m.RecordsRestored, &m.Commits, &m.Aborts); err == nil {
				c.metrics = m
			}
		}
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
}

// waitFor waits until ok holds of the child's metrics and events.
func (c *child) waitFor(ctx context.Context, timeout time.Duration, what string, ok func(stream.Metrics, []event) bool) error {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		m, evs, changed := c.metrics, c.events, c.changed
		done := ok(m, evs)
		c.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-c.exited:
			return fmt.Errorf("application process exited while waiting for %s", what)
		case <-deadline:
			return fmt.Errorf("application process: no %s in %v (metrics %+v)", what, timeout, m)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stop sends sig and waits for the process to exit.
func (c *child) stop(sig syscall.Signal) error {
	if err := c.cmd.Process.Signal(sig); err != nil {
		return err
	}
	<-c.exited
	err := c.cmd.Wait()
	if sig == syscall.SIGKILL {
		return nil
	}
	return err
}

// kill ends the process if it still runs; it is the cleanup of every
// child, whatever went wrong.
func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		<-c.exited
		c.cmd.Wait()
	}
}

func hasEvent(evs []event, name string) (event, bool) {
	for _, e := range evs {
		if e.name == name {
			return e, true
		}
	}
	return event{}, false
}

// buildResult is the child's first run, which builds the state.
type buildResult struct {
	keys, lines int64
	took        time.Duration // from the process's start to the commit after its last record
}

// restartResult is the restarted child's start.
type restartResult struct {
	variant  string
	keys     int64
	events   []event // up to "second"
	restored int64   // changelog records the restarted instance read
	profile  string
}

// restoreResult is a fresh instance restoring the whole changelog.
type restoreResult struct {
	keys      int64
	records   int64   // changelog records restored
	bytes     float64 // record batch bytes the broker served from the changelog
	payload   int64   // bytes of the changelog's keys and values
	assigned  time.Duration
	first     time.Duration // first record processed: every task restored
	fromStart bool          // no assignment log line: timed from Start
}

func (r restoreResult) restoreTime() time.Duration { return r.first - r.assigned }

// stateWorkloads runs the keys word count in a child process until its
// store holds b.keys keys; then (restart) kills it with SIGKILL and starts
// it again on the same state directory, and (restore) restores its
// changelog into a fresh instance.
func (b *bench) stateWorkloads(restart, restore bool) error {
	if err := b.createTopics(keysInput, keysOutput); err != nil {
		return err
	}
	in := keyLines(keysInput, b.keys)
	if err := b.produce(in); err != nil {
		return err
	}
	dir := filepath.Join(b.tmp, "state-keys")
	b.prog.printf("restart: building %d keys of state in a child process", b.keys)
	c, err := b.startChild(dir, "")
	if err != nil {
		return err
	}
	defer c.kill()
	// Every line and every word processed, then two commits more: the
	// second one began after the last record, so everything is committed,
	// changelog positions in Pebble included.
	total := in.n + b.keys
	var commitsAtEnd int64 = -1
	err = c.waitFor(b.ctx, 10*time.Minute, "end of the input", func(m stream.Metrics, _ []event) bool {
		if commitsAtEnd < 0 && m.RecordsProcessed >= total {
			commitsAtEnd = m.Commits
		}
		return commitsAtEnd >= 0 && m.Commits >= commitsAtEnd+2
	})
	if err != nil {
		return err
	}
	b.build = &buildResult{keys: b.keys, lines: in.n, took: time.Since(c.start)}
	b.prog.printf("restart: state built in %v", b.build.took.Round(time.Millisecond))

	if restart {
		// First as things are: the killed process's member stays in the
		// group until its session times out. Then again with the group
		// told at once (LeaveGroup for the dead member, as an operator or
		// static membership would have it), which shows what the rest of
		// the restart costs.
		for i, evict := range []bool{false, true} {
			if err := c.stop(syscall.SIGKILL); err != nil {
				return err
			}
			variant := "member left to time out"
			if evict {
				variant = "dead member removed at once"
				if err := b.removeMembers(keysApp); err != nil {
					return err
				}
			}
			// The probe is on the broker before the new process starts.
			probe := &kgo.Record{Topic: keysInput, Value: fmt.Appendf(nil, "probe%d", i)}
			if err := produceOne(b.ctx, b.broker.Addr(), probe); err != nil {
				return err
			}
			b.prog.printf("restart: killed (SIGKILL), %s; starting it again on the same state directory", variant)
			profile := ""
			if evict {
				profile = b.childProfile
			}
			if c, err = b.startChild(dir, profile); err != nil {
				return err
			}
			defer c.kill()
			err = c.waitFor(b.ctx, 3*time.Minute, "second record processed", func(_ stream.Metrics, evs []event) bool {
				_, ok := hasEvent(evs, "second")
				return ok
			})
			if err != nil {
				return err
			}
			c.mu.Lock()
			res := restartResult{variant: variant, keys: b.keys, events: c.events, restored: c.metrics.RecordsRestored, profile: profile}
			commits := c.metrics.Commits
			c.mu.Unlock()
			// Two commits more, so the next kill finds nothing
			// uncommitted that the next start would process again.
			err = c.waitFor(b.ctx, time.Minute, "commits", func(m stream.Metrics, _ []event) bool { return m.Commits >= commits+2 })
			if err != nil {
				return err
			}
			b.restarts = append(b.restarts, res)
			first, _ := hasEvent(res.events, "first")
			b.prog.printf("restart: first record processed %v after the process started", first.at.Round(time.Millisecond))
		}
	}
	if err := c.stop(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop application process: %w", err)
	}
	if restore {
		return b.measureRestore()
	}
	return nil
}

// removeMembers makes group forget its members, as the end of their
// session timeout would.
func (b *bench) removeMembers(group string) error {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	described, err := b.adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group %s: %w", group, err)
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = group
	for _, m := range described[group].Members {
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = m.MemberID
		if m.InstanceID != nil {
			lm.InstanceID = m.InstanceID
		}
		req.Members = append(req.Members, lm)
	}
	if len(req.Members) == 0 {
		return nil
	}
	resp, err := req.RequestWith(ctx, b.cl)
	if err != nil {
		return fmt.Errorf("leave group %s: %w", group, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("leave group %s: %w", group, err)
	}
	return nil
}

// measureRestore starts a fresh instance of the keys app (an empty state
// directory) on the same broker, after the previous one left the group:
// it must restore the store's whole changelog before it processes a probe
// record waiting for it. The restoration is timed from the instance's
// assignment (its "stream: assigned" log line) to its first processed
// record, which the runtime processes only once every task's stores are
// restored; its bytes are the record batch bytes the broker served from
// the changelog meanwhile.
func (b *bench) measureRestore() error {
	changelog := topology.ChangelogTopic(keysApp, "counts")
	probe := &kgo.Record{Topic: keysInput, Value: []byte("probe-after-restore")}
	if err := produceOne(b.ctx, b.broker.Addr(), probe); err != nil {
		return err
	}
	before, err := b.bytesOut(changelog)
	if err != nil {
		return err
	}
	topo, err := wordCount(keysInput, keysOutput)
	if err != nil {
		return err
	}
	var (
		mu       sync.Mutex
		assigned time.Time
	)
	logger := slog.New(funcHandler(func(r slog.Record) {
		if strings.Contains(r.Message, "assigned") {
			mu.Lock()
			if assigned.IsZero() {
				assigned = r.Time
			}
			mu.Unlock()
		}
	}))
	app, err := stream.NewApp(topo, stream.ApplicationID(keysApp), stream.Brokers(b.broker.Addr()),
		stream.StateDir(filepath.Join(b.tmp, "state-fresh")), stream.ProcessingGuarantee(stream.ExactlyOnce),
		stream.Logger(logger))
	if err != nil {
		return err
	}
	b.prog.printf("restore: a fresh instance restores %s", changelog)
	start := time.Now()
	if err := app.Start(b.ctx); err != nil {
		return fmt.Errorf("restore: start: %w", err)
	}
	startedAt := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	timeout := time.After(5 * time.Minute)
	for app.Metrics().RecordsProcessed == 0 {
		select {
		case <-tick.C:
		case <-app.Done():
			return fmt.Errorf("restore: processing stopped: %w", app.Close())
		case <-timeout:
			app.Close()
			return errors.New("restore: no record processed in 5 minutes")
		case <-b.ctx.Done():
			app.Close()
			return b.ctx.Err()
		}
	}
	first := time.Since(start)
	m := app.Metrics()
	after, err := b.bytesOut(changelog)
	if err != nil {
		app.Close()
		return err
	}
	if err := app.Close(); err != nil {
		return fmt.Errorf("restore: close: %w", err)
	}
	payload, err := b.payloadBytes(changelog)
	if err != nil {
		return err
	}
	mu.Lock()
	res := &restoreResult{keys: b.keys, records: m.RecordsRestored, bytes: after - before, payload: payload, first: first}
	if assigned.IsZero() {
		res.assigned, res.fromStart = startedAt.Sub(start), true
	} else {
		res.assigned = assigned.Sub(start)
	}
	mu.Unlock()
	b.restore = res
	b.prog.printf("restore: %d records, %.1f MB in %v: %.1f MB/s", res.records, res.bytes/1e6,
		res.restoreTime().Round(time.Millisecond), res.bytes/1e6/res.restoreTime().Seconds())
	return nil
}

// payloadBytes reads topic from the start to its end offsets and sums the
// lengths of its records' keys and values: what the batches the broker
// served hold, decompressed and without the record framing.
func (b *bench) payloadBytes(topic string) (int64, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Minute)
	defer cancel()
	ends, err := b.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	parts := map[int32]kgo.Offset{}
	pending := map[int32]int64{}
	ends.Each(func(e kadm.ListedOffset) {
		if e.Offset > 0 {
			parts[e.Partition] = kgo.NewOffset().AtStart()
			pending[e.Partition] = e.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.broker.Addr()), kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var n int64
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return n, fmt.Errorf("read %s: %w", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				n += int64(len(r.Key) + len(r.Value))
			}
			if end, ok := pending[r.Partition]; ok && r.Offset+1 >= end {
				delete(pending, r.Partition)
			}
		})
	}
	return n, nil
}

// funcHandler is a slog.Handler calling f with every record.
type funcHandler func(slog.Record)

func (f funcHandler) Enabled(context.Context, slog.Level) bool      { return true }
func (f funcHandler) Handle(_ context.Context, r slog.Record) error { f(r); return nil }
func (f funcHandler) WithAttrs([]slog.Attr) slog.Handler            { return f }
func (f funcHandler) WithGroup(string) slog.Handler                 { return f }
