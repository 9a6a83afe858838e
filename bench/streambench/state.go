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

	"github.com/runnel-dev/runnel"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/topology"
)

// child is the restart workload's application process.
type child struct {
	cmd     *exec.Cmd
	profile string        // where it writes a CPU profile of its start, if set
	start   time.Time     // just before the process was started
	exited  chan struct{} // closed once its stdout is drained

	mu      sync.Mutex // guards the following
	addr    string     // the broker the application uses
	events  []event
	metrics runnel.Metrics
	changed chan struct{} // closed and replaced on every new line
}

// event is something the child reported, at a time since its start.
type event struct {
	at     time.Duration
	name   string
	detail string
}

// childOpts are a child process's settings.
type childOpts struct {
	dir     string // state directory
	broker  string // bootstrap server; "" runs the broker embedded in the child
	probe   string // if set, the child produces a line of this text once started
	profile string // CPU profile of the start
}

// startChild starts this binary as the child application.
func (b *bench) startChild(o childOpts) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"=1", childBrokerEnv+"="+o.broker, childDirEnv+"="+o.dir,
		childProbeEnv+"="+o.probe, childProfileEnv+"="+o.profile)
	cmd.Stderr = os.Stderr
	dieWithParent(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, profile: o.profile, exited: make(chan struct{}), changed: make(chan struct{})}
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
		case f[0] == "ADDR" && len(f) == 2:
			c.addr = f[1]
		case f[0] == "METRICS":
			var m runnel.Metrics
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
func (c *child) waitFor(ctx context.Context, timeout time.Duration, what string, ok func(runnel.Metrics, []event) bool) error {
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
	first     time.Duration // the app Running: every task restored
	fromStart bool          // no assignment log line: timed from Start
	// cpu is this process's user+system CPU time (app and broker) from
	// Start until the app is Running.
	cpu time.Duration
}

func (r restoreResult) restoreTime() time.Duration { return r.first - r.assigned }

// waitBuilt waits until the child has processed total records, and one
// commit more: it covers the last record, and the runtime counts a commit
// once its changelog positions are in Pebble.
func (c *child) waitBuilt(ctx context.Context, total int64) error {
	var commitsAtEnd int64 = -1
	return c.waitFor(ctx, 10*time.Minute, "end of the input", func(m runnel.Metrics, _ []event) bool {
		if commitsAtEnd < 0 && m.RecordsProcessed >= total {
			commitsAtEnd = m.Commits
		}
		return commitsAtEnd >= 0 && m.Commits >= commitsAtEnd+1
	})
}

// waitAddr waits for the child to report its broker's address.
func (c *child) waitAddr(ctx context.Context) (string, error) {
	var addr string
	err := c.waitFor(ctx, time.Minute, "broker address", func(runnel.Metrics, []event) bool {
		addr = c.addr
		return addr != ""
	})
	return addr, err
}

// stateWorkloads runs the keys word count in a child process until its
// store holds b.keys keys; then (restart) kills it with SIGKILL and starts
// it again on the same state directory, and (restore) restores its
// changelog into a fresh instance.
func (b *bench) stateWorkloads(restart, restore bool) error {
	if err := b.createTopics(keysInput, keysOutput); err != nil {
		return err
	}
	in := keyLines(keysInput, b.keys)
	if err := b.produce(b.broker.Addr(), in); err != nil {
		return err
	}
	o := childOpts{dir: filepath.Join(b.tmp, "state-keys"), broker: b.broker.Addr()}
	b.prog.printf("restart: building %d keys of state in a child process", b.keys)
	c, err := b.startChild(o)
	if err != nil {
		return err
	}
	defer c.kill()
	if err := c.waitBuilt(b.ctx, in.n+b.keys); err != nil {
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
			variant := "broker in the benchmark, member left to time out"
			if evict {
				variant = "broker in the benchmark, dead member removed at once"
				if err := removeMembers(b.ctx, b.cl, keysApp, nil); err != nil {
					return err
				}
			}
			// The probe is on the broker before the new process starts.
			probe := &kgo.Record{Topic: keysInput, Value: fmt.Appendf(nil, "probe%d", i)}
			if err := produceOne(b.ctx, b.broker.Addr(), probe); err != nil {
				return err
			}
			b.prog.printf("restart: killed (SIGKILL), %s; starting it again on the same state directory", variant)
			o.profile = ""
			if evict {
				o.profile = b.childProfile
			}
			if c, err = b.startChild(o); err != nil {
				return err
			}
			defer c.kill()
			if err := b.waitRestarted(c, variant); err != nil {
				return err
			}
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

// waitRestarted waits for the restarted child c to process the probe line
// and its word, records its timeline, and waits for two commits more, so
// that the next kill finds nothing uncommitted that the next start would
// process again.
func (b *bench) waitRestarted(c *child, variant string) error {
	err := c.waitFor(b.ctx, 3*time.Minute, "second record processed", func(_ runnel.Metrics, evs []event) bool {
		_, ok := hasEvent(evs, "second")
		return ok
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	res := restartResult{variant: variant, keys: b.keys, events: c.events, restored: c.metrics.RecordsRestored,
		profile: c.profile}
	commits := c.metrics.Commits
	c.mu.Unlock()
	b.restarts = append(b.restarts, res)
	first, _ := hasEvent(res.events, "first")
	b.prog.printf("restart: first record processed %v after the process started", first.at.Round(time.Millisecond))
	return c.waitFor(b.ctx, time.Minute, "commits", func(m runnel.Metrics, _ []event) bool { return m.Commits >= commits+1 })
}

// restartEmbedded is the restart workload with the broker embedded in the
// application process (runnel.App with no Brokers, the default), so the
// SIGKILL kills the broker too, and the restart starts it again on its
// data: the application as most users would run it. The child produces
// the probe line itself once started (its broker is not up before).
func (b *bench) restartEmbedded() error {
	o := childOpts{dir: filepath.Join(b.tmp, "state-embedded")}
	b.prog.printf("restart-embedded: building %d keys of state in a child process with its own broker", b.keys)
	c, err := b.startChild(o)
	if err != nil {
		return err
	}
	defer c.kill()
	addr, err := c.waitAddr(b.ctx)
	if err != nil {
		return err
	}
	in := keyLines(keysInput, b.keys)
	if err := b.produce(addr, in); err != nil {
		return err
	}
	if err := c.waitBuilt(b.ctx, in.n+b.keys); err != nil {
		return err
	}
	b.prog.printf("restart-embedded: state built in %v", time.Since(c.start).Round(time.Millisecond))
	for i, evict := range []bool{false, true} {
		// The members to remove are those before the kill: the new
		// process's member must stay.
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			return err
		}
		members, err := groupMembers(b.ctx, kadm.NewClient(cl), keysApp)
		cl.Close()
		if err != nil {
			return err
		}
		if err := c.stop(syscall.SIGKILL); err != nil {
			return err
		}
		variant := "broker embedded in the app, member left to time out"
		if evict {
			variant = "broker embedded in the app, dead member removed once the broker is up"
		}
		b.prog.printf("restart-embedded: killed (SIGKILL) with its broker, %s; starting it again", variant)
		o.probe = fmt.Sprintf("probe%d", i)
		if c, err = b.startChild(o); err != nil {
			return err
		}
		defer c.kill()
		if evict {
			if addr, err = c.waitAddr(b.ctx); err != nil {
				return err
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
			if err != nil {
				return err
			}
			err = removeMembers(b.ctx, cl, keysApp, members)
			cl.Close()
			if err != nil {
				return err
			}
		}
		if err := b.waitRestarted(c, variant); err != nil {
			return err
		}
		if addr, err = c.waitAddr(b.ctx); err != nil {
			return err
		}
	}
	return c.stop(syscall.SIGTERM)
}

// groupMembers returns the member ids of group.
func groupMembers(ctx context.Context, adm *kadm.Client, group string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, err)
	}
	var ids []string
	for _, m := range described[group].Members {
		ids = append(ids, m.MemberID)
	}
	return ids, nil
}

// removeMembers makes group forget the members ids (all of them if ids is
// nil), as the end of their session timeout would.
func removeMembers(ctx context.Context, cl *kgo.Client, group string, ids []string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if ids == nil {
		var err error
		if ids, err = groupMembers(ctx, kadm.NewClient(cl), group); err != nil {
			return err
		}
	}
	if len(ids) == 0 {
		return nil
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = group
	for _, id := range ids {
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = id
		req.Members = append(req.Members, lm)
	}
	resp, err := req.RequestWith(ctx, cl)
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
// assignment (its "stream: assigned" log line) until the app is Running,
// which it is once every task's stores are restored (tasks without state
// process before: restoration does not block them); its bytes are the
// record batch bytes the broker served from the changelog meanwhile.
func (b *bench) measureRestore() error {
	probe := &kgo.Record{Topic: keysInput, Value: []byte("probe-after-restore")}
	if err := produceOne(b.ctx, b.broker.Addr(), probe); err != nil {
		return err
	}
	res, err := b.timeRestore(keysApp, keysInput, keysOutput, "state-fresh")
	if err != nil {
		return err
	}
	res.keys = b.keys
	b.restore = res
	return nil
}

// timeRestore starts a fresh instance (an empty state directory dir) of
// appID, the word count of input into output, and times its restoration of
// the whole changelog of its store.
func (b *bench) timeRestore(appID, input, output, dir string) (*restoreResult, error) {
	changelog := topology.ChangelogTopic(appID, "counts")
	before, err := b.bytesOut(changelog)
	if err != nil {
		return nil, err
	}
	topo, err := wordCount(input, output)
	if err != nil {
		return nil, err
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
	app, err := runnel.NewApp(topo, runnel.ApplicationID(appID), runnel.Brokers(b.broker.Addr()),
		runnel.StateDir(filepath.Join(b.tmp, dir)), runnel.ProcessingGuarantee(runnel.ExactlyOnce),
		runnel.Logger(logger))
	if err != nil {
		return nil, err
	}
	b.prog.printf("restore: a fresh instance restores %s", changelog)
	start, cpuStart := time.Now(), cpuTime()
	if err := app.Start(b.ctx); err != nil {
		return nil, fmt.Errorf("restore: start: %w", err)
	}
	startedAt := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	timeout := time.After(5 * time.Minute)
	for app.State() != runnel.Running {
		select {
		case <-tick.C:
		case <-app.Done():
			return nil, fmt.Errorf("restore: processing stopped: %w", app.Close())
		case <-timeout:
			app.Close()
			return nil, errors.New("restore: not running after 5 minutes")
		case <-b.ctx.Done():
			app.Close()
			return nil, b.ctx.Err()
		}
	}
	first, cpu := time.Since(start), cpuTime()-cpuStart
	m := app.Metrics()
	after, err := b.bytesOut(changelog)
	if err != nil {
		app.Close()
		return nil, err
	}
	if err := app.Close(); err != nil {
		return nil, fmt.Errorf("restore: close: %w", err)
	}
	payload, err := b.payloadBytes(changelog)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	res := &restoreResult{records: m.RecordsRestored, bytes: after - before, payload: payload, first: first, cpu: cpu}
	if assigned.IsZero() {
		res.assigned, res.fromStart = startedAt.Sub(start), true
	} else {
		res.assigned = assigned.Sub(start)
	}
	mu.Unlock()
	b.prog.printf("restore: %d records, %.1f MB in %v: %.1f MB/s, %.2f CPU s", res.records, res.bytes/1e6,
		res.restoreTime().Round(time.Millisecond), res.bytes/1e6/res.restoreTime().Seconds(), res.cpu.Seconds())
	return res, nil
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
