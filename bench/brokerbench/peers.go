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
)

// A peer is one broker implementation under test. Start runs it in its own
// process with its data in dir and returns once it accepts Kafka clients.
type peer interface {
	name() string
	// durability says in a few words when the peer acknowledges a write
	// relative to fsync, for the report.
	durability() string
	start(ctx context.Context, dir string) (*process, error)
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
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &process{cmd: cmd, log: logPath, done: make(chan error, 1)}

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
		p.done <- cmd.Wait()
		logf.Close()
	}()

	select {
	case addr := <-addrc:
		p.addr = addr
		return p, nil
	case <-time.After(timeout):
		_ = p.stop(5 * time.Second)
		return nil, fmt.Errorf("%s: no %q line within %v; see %s", filepath.Base(cmd.Path), marker, timeout, logPath)
	case <-ctx.Done():
		_ = p.stop(5 * time.Second)
		return nil, ctx.Err()
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
	p := &process{cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() {
		p.done <- cmd.Wait()
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
