package faultinject

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BuildRunnel builds the runnel command of the module that holds dir (or
// the working directory when dir is "") into outDir and returns the
// binary's path. Build it once per test run (in TestMain) and start every
// broker from it.
func BuildRunnel(ctx context.Context, dir, outDir string) (string, error) {
	gomod := exec.CommandContext(ctx, "go", "env", "GOMOD")
	gomod.Dir = dir
	out, err := gomod.Output()
	if err != nil {
		return "", fmt.Errorf("faultinject: go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	if root == "." || root == "" {
		return "", fmt.Errorf("faultinject: %q is not inside a Go module", dir)
	}
	bin := filepath.Join(outDir, "runnel")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/runnel")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("faultinject: go build ./cmd/runnel: %w\n%s", err, out)
	}
	return bin, nil
}

// ErrNotRunning is returned by Process methods that need a live process.
var ErrNotRunning = errors.New("faultinject: broker process not running")

// listeningPrefix is what `runnel broker` prints on standard output once
// clients can connect.
const listeningPrefix = "runnel broker listening on "

// outputLimit bounds the output a Process keeps for failure messages.
const outputLimit = 256 << 10

// Process runs `runnel broker` as a separate process that a test can
// SIGKILL, pause (SIGSTOP), resume and restart on the same data
// directory. Its output (standard output and error, the last 256 KiB)
// goes into failure messages. Methods are safe to call from any
// goroutine; each start owns one goroutine, which waits for the process
// and ends with it.
type Process struct {
	bin string

	mu sync.Mutex // guards the following
	// args are the broker's flags; after the first start a "--listen
	// HOST:0" is pinned to the port chosen, so a restart comes back on
	// the address clients know.
	args   []string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has exited
	err    error         // the current process's exit status, once exited
	addr   string
	out    *tailBuffer
	paused bool
}

// StartBroker starts `bin broker args...` and waits until it listens or
// ctx ends. Give it --data-dir and --listen (port 0 picks a free port,
// kept across restarts).
func StartBroker(ctx context.Context, bin string, args ...string) (*Process, error) {
	p := &Process{bin: bin, args: append([]string(nil), args...), out: &tailBuffer{max: outputLimit}}
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Addr is the address the broker listens on.
func (p *Process) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// Args are the flags the broker runs (and restarts) with.
func (p *Process) Args() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.args...)
}

// Output is the output of every start so far (its last 256 KiB).
func (p *Process) Output() string { return p.out.String() }

// Running reports whether the current process has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *Process) start(ctx context.Context) error {
	p.mu.Lock()
	if p.exited != nil {
		select {
		case <-p.exited:
		default:
			p.mu.Unlock()
			return errors.New("faultinject: broker process already running")
		}
	}
	// Several brokers share the machine, and each restarts many times:
	// none takes its whole direct-writes cache at start.
	args := append([]string{"broker", "--direct-writes-cache-prefault=false"}, p.args...)
	cmd := exec.Command(p.bin, args...)
	lines := &lineWatcher{prefix: listeningPrefix, found: make(chan string, 1), next: p.out}
	fmt.Fprintf(p.out, "--- start: %s %s\n", p.bin, strings.Join(args, " "))
	cmd.Stdout = lines
	cmd.Stderr = p.out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("faultinject: start broker: %w", err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.err, p.paused = cmd, exited, nil, false
	p.mu.Unlock()

	go func() { // owned by the process: ends when it exits
		err := cmd.Wait()
		fmt.Fprintf(p.out, "--- exit: %v\n", err)
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()

	select {
	case addr := <-lines.found:
		p.mu.Lock()
		p.addr = addr
		p.args = pinListen(p.args, addr)
		p.mu.Unlock()
		return nil
	case <-exited:
		return fmt.Errorf("faultinject: broker exited before listening: %v\n%s", p.exitErr(), p.Output())
	case <-ctx.Done():
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("faultinject: broker did not listen: %w\n%s", ctx.Err(), p.Output())
	}
}

func (p *Process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// pinListen replaces a --listen flag's port 0 with the port addr has.
func pinListen(args []string, addr string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		switch {
		case (a == "--listen" || a == "-listen") && i+1 < len(out) && strings.HasSuffix(out[i+1], ":0"):
			out[i+1] = addr
		case strings.HasPrefix(a, "--listen=") && strings.HasSuffix(a, ":0"),
			strings.HasPrefix(a, "-listen=") && strings.HasSuffix(a, ":0"):
			out[i] = a[:strings.Index(a, "=")+1] + addr
		}
	}
	return out
}

// signal sends sig to the running process.
func (p *Process) signal(sig syscall.Signal) (chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || !isOpen(p.exited) {
		return nil, ErrNotRunning
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return nil, fmt.Errorf("faultinject: %v: %w", sig, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.paused = true
	case syscall.SIGCONT:
		p.paused = false
	}
	return p.exited, nil
}

func isOpen(c chan struct{}) bool {
	select {
	case <-c:
		return false
	default:
		return true
	}
}

// Kill SIGKILLs the broker, as a crash or power cut of its process would
// (written data stays in the page cache), and waits until it is gone.
func (p *Process) Kill() error {
	exited, err := p.signal(syscall.SIGKILL)
	if err != nil {
		return err
	}
	<-exited
	return nil
}

// Stop sends SIGTERM (a clean shutdown) and waits up to timeout for the
// broker to exit, then kills it. It returns the exit error of a broker
// that did not exit cleanly in time.
func (p *Process) Stop(timeout time.Duration) error {
	p.Resume() // a stopped process cannot handle SIGTERM
	exited, err := p.signal(syscall.SIGTERM)
	if err != nil {
		return err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-exited:
		return p.exitErr()
	case <-t.C:
		p.Kill()
		return fmt.Errorf("faultinject: broker did not stop within %v; killed\n%s", timeout, p.Output())
	}
}

// Pause stops the broker with SIGSTOP: it keeps its connections and its
// state but answers nothing, as a long GC pause or a frozen VM would.
func (p *Process) Pause() error {
	_, err := p.signal(syscall.SIGSTOP)
	return err
}

// Resume continues a paused broker with SIGCONT.
func (p *Process) Resume() error {
	p.mu.Lock()
	paused := p.paused
	p.mu.Unlock()
	if !paused {
		return nil
	}
	_, err := p.signal(syscall.SIGCONT)
	return err
}

// Restart starts the broker again, with the same flags and data
// directory, after Kill or Stop, and waits until it listens.
func (p *Process) Restart(ctx context.Context) error {
	return p.start(ctx)
}

// Close kills the broker if it runs and waits for it; a test defers it.
func (p *Process) Close() error {
	if err := p.Kill(); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int

	mu  sync.Mutex // guards buf
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// lineWatcher passes output on to next and reports, once, what follows
// prefix on the first line that starts with it.
type lineWatcher struct {
	prefix string
	found  chan string
	next   *tailBuffer

	partial []byte // only the exec copying goroutine writes
	done    bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.next.Write(p)
	if w.done {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		if rest, ok := strings.CutPrefix(line, w.prefix); ok {
			w.found <- strings.TrimSpace(rest)
			w.done, w.partial = true, nil
			break
		}
	}
	return len(p), nil
}
