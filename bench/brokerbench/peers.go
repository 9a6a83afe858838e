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
	"strings"
	"syscall"
	"time"

	"github.com/runnel-dev/runnel/bench/internal/procstat"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A peer is one broker implementation under test. Start runs it, one
// broker or a cluster of them, each broker in its own process, with its
// data under dir, and returns once every broker accepts Kafka clients.
type peer interface {
	name() string
	// durability says in a few words when the peer acknowledges a write
	// relative to fsync, for the report.
	durability() string
	start(ctx context.Context, dir string) (*cluster, error)
}

// cluster is the broker processes a peer started: one, or the members of
// a replicated cluster. Its CPU time is the sum over all of them.
type cluster struct {
	procs []*process
	// sec is how clients reach the brokers' addresses; nil for
	// plaintext.
	sec *security
}

// clientOpts are the options every benchmark client of the cluster
// starts from: its seeds and its security.
func (c *cluster) clientOpts() []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...)}, c.sec.clientOpts()...)
}

// seeds are the brokers' client addresses, for kgo.SeedBrokers.
func (c *cluster) seeds() []string {
	s := make([]string, len(c.procs))
	for i, p := range c.procs {
		s[i] = p.addr
	}
	return s
}

// pids are the brokers' process ids.
func (c *cluster) pids() []int {
	s := make([]int, len(c.procs))
	for i, p := range c.procs {
		s[i] = p.pid()
	}
	return s
}

// cpu returns the user+system CPU time each broker process has used so
// far, in the order of procs.
func (c *cluster) cpu() ([]time.Duration, error) {
	s := make([]time.Duration, len(c.procs))
	for i, p := range c.procs {
		var err error
		if s[i], err = p.cpu(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// sysCPU returns the system CPU time the broker processes have used so
// far, summed.
func (c *cluster) sysCPU() (time.Duration, error) {
	var t time.Duration
	for _, p := range c.procs {
		_, s, err := procstat.Times(p.pid())
		if err != nil {
			return 0, err
		}
		t += s
	}
	return t, nil
}

// logs names the brokers' log files, for failure messages.
func (c *cluster) logs() string {
	s := make([]string, len(c.procs))
	for i, p := range c.procs {
		s[i] = p.log
	}
	return strings.Join(s, " ")
}

// watch returns a context that is cancelled, with an errExited cause,
// as soon as one of the cluster's processes exits, so that a phase under
// way fails at once instead of waiting on a broker that is gone (a
// client retries a dead address until its context ends). Call cancel
// before stopping the cluster.
func (c *cluster) watch(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	for _, p := range c.procs {
		go func() {
			select {
			case <-p.gone:
				cancel(p.exitErr())
			case <-ctx.Done():
			}
		}()
	}
	return ctx, func() { cancel(nil) }
}

// exitedWithin returns an errExited for one of the cluster's processes
// that has exited, or exits within wait, or nil. A phase that fails just
// as a broker dies sees a closed connection before the exit is reaped.
func (c *cluster) exitedWithin(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		for _, p := range c.procs {
			select {
			case <-p.gone:
				return p.exitErr()
			default:
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		time.Sleep(min(left, 10*time.Millisecond))
	}
}

// errExited says a broker process exited while it was being measured.
type errExited struct {
	name string
	pid  int
	log  string
}

// exitErr is the errExited of a process that has exited.
func (p *process) exitErr() *errExited {
	return &errExited{name: filepath.Base(p.cmd.Path), pid: p.pid(), log: p.log}
}

func (e *errExited) Error() string {
	return fmt.Sprintf("%s (pid %d) exited while measured; see %s", e.name, e.pid, e.log)
}

// stop sends every broker SIGTERM at once (so that a cluster's members
// shut down together, none waiting for a controller already gone) and
// waits for each as process.stop does.
func (c *cluster) stop(grace time.Duration) error {
	errs := make(chan error, len(c.procs))
	for _, p := range c.procs {
		go func() { errs <- p.stop(grace) }()
	}
	var all []error
	for range c.procs {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// produceOnly is implemented by a peer that stores nothing, so the consume
// phase is skipped for it.
type produceOnly interface{ produceOnly() }

// process is a running broker: its own OS process, so that its CPU time can
// be read from /proc without counting the benchmark client.
type process struct {
	cmd  *exec.Cmd
	addr string // Kafka protocol address, HOST:PORT
	log  string // file holding the process's stderr (and stdout after ready)
	done chan error
	// gone is closed once the process has exited, for watch: done
	// hands its error to one receiver, stop.
	gone chan struct{}
}

// newProcess is a started cmd's process; reap waits for it.
func newProcess(cmd *exec.Cmd, logPath string) *process {
	return &process{cmd: cmd, log: logPath, done: make(chan error, 1), gone: make(chan struct{})}
}

// reap waits for the process to exit and reports its end to stop and
// watch.
func (p *process) reap() {
	err := p.cmd.Wait()
	close(p.gone)
	p.done <- err
}

// pid returns the broker's process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// cpu returns the user+system CPU time the broker process has used so far.
func (p *process) cpu() (time.Duration, error) { return procCPU(p.pid()) }

// stop asks the broker to shut down with SIGTERM and kills it if it has not
// exited within the grace period.
func (p *process) stop(grace time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case err := <-p.done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			ws := exit.Sys().(syscall.WaitStatus)
			// Killed by our SIGTERM, or exited 128+SIGTERM after its
			// shutdown hooks (the JVM does): both are a clean stop.
			if ws.Signaled() || ws.ExitStatus() == 128+int(syscall.SIGTERM) {
				return nil
			}
		}
		return err
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %v after SIGTERM; killed", p.cmd.Path, grace)
	}
}

// startListening starts cmd and waits until a line of its standard output
// contains marker followed by the address it listens on, as in
// "runnel broker listening on 127.0.0.1:40123". Its standard error, and its
// standard output after that line, go to logPath.
func startListening(ctx context.Context, cmd *exec.Cmd, marker, logPath string, timeout time.Duration) (*process, error) {
	p, addrc, err := launch(cmd, marker, logPath)
	if err != nil {
		return nil, err
	}
	if err := p.awaitListening(ctx, addrc, marker, timeout); err != nil {
		return nil, err
	}
	return p, nil
}

// launch starts cmd as startListening does, without waiting: the
// address marker announces arrives on the returned channel. The members
// of a cluster wait for each other at start, so all are launched before
// any is awaited.
func launch(cmd *exec.Cmd, marker, logPath string) (*process, <-chan string, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, err
	}
	p := newProcess(cmd, logPath)

	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			line := sc.Text()
			if !found {
				if i := strings.Index(line, marker); i >= 0 {
					found = true
					addrc <- strings.TrimSpace(line[i+len(marker):])
					continue
				}
			}
			fmt.Fprintln(logf, line)
		}
		_, _ = io.Copy(logf, stdout)
		p.reap()
		logf.Close()
	}()
	return p, addrc, nil
}

// awaitListening waits for the address launch's reader found, and stops
// the process if none comes within timeout.
func (p *process) awaitListening(ctx context.Context, addrc <-chan string, marker string, timeout time.Duration) error {
	select {
	case addr := <-addrc:
		p.addr = addr
		return nil
	case <-time.After(timeout):
		_ = p.stop(5 * time.Second)
		return fmt.Errorf("%s: no %q line within %v; see %s", filepath.Base(p.cmd.Path), marker, timeout, p.log)
	case <-ctx.Done():
		_ = p.stop(5 * time.Second)
		return ctx.Err()
	}
}

// startBackground starts cmd with its output going to logPath, for a peer
// whose readiness the caller checks itself.
func startBackground(cmd *exec.Cmd, logPath string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := newProcess(cmd, logPath)
	go func() {
		p.reap()
		logf.Close()
	}()
	return p, nil
}

// exited reports whether the process has already exited, and with what.
func (p *process) exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err // keep it for stop
		return true, err
	default:
		return false, nil
	}
}

// goBuild compiles a main package of the bench module into dir and returns
// the binary's path. Running the binary directly (not under `go run`) makes
// the broker the process whose CPU time is measured.
func goBuild(ctx context.Context, pkg, dir string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}
