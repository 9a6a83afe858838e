package testutil

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"

	"github.com/runnel-dev/runnel/broker"
)

// Crash tests run the test binary a second time as a child process — a
// broker or an application — that they can SIGKILL, without building a
// command first. The child is told what to be by an environment variable:
// a package's TestMain calls RunChildOrTests, and a test starts the child
// with StartChild.

// RunChildOrTests runs child with the value of the environment variable
// env when the binary was started as a child, and the tests otherwise;
// it returns the exit code for TestMain to pass to os.Exit.
func RunChildOrTests(m *testing.M, env string, child func(value string) int) int {
	if v := os.Getenv(env); v != "" {
		return child(v)
	}
	return m.Run()
}

// Child is the test binary running as a child process.
type Child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process exited and its output was read
	err  error         // the exit status; set before done is closed
}

// StartChild runs the test binary again, with no tests, with env added to
// the environment (among them the variable RunChildOrTests checks). Each
// line the child writes to stdout goes to onLine, on a goroutine of its
// own; its stderr is the test's. The child is killed, if still running,
// when the test ends.
func StartChild(t testing.TB, env []string, onLine func(line string)) *Child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &Child{cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			onLine(sc.Text())
		}
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.done
	})
	return c
}

// Done is closed once the child exited and its output was read.
func (c *Child) Done() <-chan struct{} { return c.done }

// Err is the child's exit status, once Done is closed.
func (c *Child) Err() error { return c.err }

// Signal sends sig to the child and waits for it to exit, returning its
// exit status.
func (c *Child) Signal(t testing.TB, sig syscall.Signal) error {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		select {
		case <-c.done: // exited already
		default:
			t.Fatal(err)
		}
	}
	<-c.done
	return c.err
}

// ServeBroker is a child broker's whole life: it starts a broker with cfg,
// prints "ADDR host:port" once it listens, and closes it on SIGTERM or
// SIGINT. It returns the child's exit code: 2 when the broker did not
// start, 1 when it did not close cleanly.
func ServeBroker(cfg broker.Config) int {
	b, err := broker.Start(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 2
	}
	fmt.Printf("ADDR %s\n", b.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	if err := b.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		return 1
	}
	return 0
}
