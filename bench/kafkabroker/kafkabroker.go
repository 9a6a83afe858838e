// Package kafkabroker is what bench's programs share to run Apache Kafka as
// a broker: finding the install (scripts/fetch-kafka.sh), the JVM flags of
// Kafka's own start script, and, for a program that needs only one node
// (streambench), starting and stopping it. The node's configuration and
// storage format are internal/kafkapeer's, which the repository's tests
// use too.
package kafkabroker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/kafkapeer"
)

// Heap and JVMOpts are the broker's JVM flags, those of Kafka's own
// kafka-server-start.sh.
const (
	Heap    = "-Xmx1G -Xms1G"
	JVMOpts = "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true"
)

// ScriptsDir returns the repository's scripts/ directory, next to the
// bench module that the go command finds from the working directory.
func ScriptsDir() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if filepath.Base(filepath.Dir(gomod)) != "bench" {
		return "", fmt.Errorf("run from the bench module (cd bench && go run ./...); go.mod here is %q", gomod)
	}
	return filepath.Join(filepath.Dir(filepath.Dir(gomod)), "scripts"), nil
}

// Resolve finds the Kafka install: home if set, else $KAFKA_HOME, else
// whatever scripts/fetch-kafka.sh prints (it returns at once when the jars
// are already there, and fetches them from Maven Central otherwise). It
// returns the install, or why Kafka cannot be run here. logf, if not nil,
// says that the script runs.
func Resolve(ctx context.Context, home, scripts string, logf func(format string, args ...any)) (kafkapeer.Install, string) {
	if home == "" {
		home = os.Getenv("KAFKA_HOME")
	}
	if home == "" {
		fetch := filepath.Join(scripts, "fetch-kafka.sh")
		if _, err := os.Stat(fetch); err != nil {
			return kafkapeer.Install{}, fmt.Sprintf("%s not found; pass -kafka-home or set KAFKA_HOME", fetch)
		}
		if logf != nil {
			logf("kafka: %s", fetch)
		}
		cmd := exec.CommandContext(ctx, fetch)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return kafkapeer.Install{}, fmt.Sprintf("%s failed: %v", fetch, err)
		}
		home = strings.TrimSpace(string(out))
	}
	in := kafkapeer.Install{Home: home, Tool: filepath.Join(scripts, "kafka-tool.sh")}
	if why := in.Check(); why != "" {
		return in, why + "; pass -kafka-home or set KAFKA_HOME"
	}
	return in, ""
}

// Broker is one Kafka node, broker and controller, in a JVM of its own.
type Broker struct {
	Addr string // its client address, HOST:PORT
	Log  string // the file holding its output
	cmd  *exec.Cmd
	done chan error // cmd.Wait's result, once
}

// Start formats a one-node cluster under dir and runs it with Kafka's
// defaults (its flush policy included: acknowledged from the page cache)
// plus extra server.properties lines, and returns once it answers a
// metadata request, or fails after timeout. The caller must Stop it.
func Start(ctx context.Context, in kafkapeer.Install, dir string, timeout time.Duration, extra ...string) (*Broker, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	node, err := kafkapeer.NewNode(filepath.Join(dir, "data"), extra...)
	if err != nil {
		return nil, err
	}
	props, err := in.Format(ctx, node, dir)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "kafka.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// Not CommandContext: Stop ends it with SIGTERM and a grace period,
	// which a cancelled context would cut to a SIGKILL.
	cmd := in.Command(context.Background(), Heap, JVMOpts, "kafka.Kafka", props)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	b := &Broker{Addr: node.Addr(), Log: logPath, cmd: cmd, done: make(chan error, 1)}
	go func() {
		b.done <- cmd.Wait()
		logf.Close()
	}()
	if err := b.waitReady(ctx, timeout); err != nil {
		_ = b.Stop(10 * time.Second)
		return nil, err
	}
	return b, nil
}

// Pid is the JVM's process id.
func (b *Broker) Pid() int { return b.cmd.Process.Pid }

// waitReady polls the broker until it answers a metadata request listing
// itself, it exits, or timeout passes.
func (b *Broker) waitReady(ctx context.Context, timeout time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-b.done:
			b.done <- err // keep it for Stop
			return fmt.Errorf("kafka exited during start-up (%v); see %s", err, b.Log)
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := adm.BrokerMetadata(pctx)
		cancel()
		if err == nil && len(m.Brokers) > 0 {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond): // polling another process: nothing to wait on
		}
	}
	return fmt.Errorf("kafka not ready within %v (%v); see %s", timeout, last, b.Log)
}

// Stop asks the broker to shut down with SIGTERM and kills it if it has
// not exited within grace.
func (b *Broker) Stop(grace time.Duration) error {
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case err := <-b.done:
		b.done <- err
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			ws := exit.Sys().(syscall.WaitStatus)
			// Killed by our SIGTERM, or the JVM's exit status for it
			// after its shutdown hooks: both are a clean stop.
			if ws.Signaled() || ws.ExitStatus() == 128+int(syscall.SIGTERM) {
				return nil
			}
		}
		return err
	case <-time.After(grace):
		_ = b.cmd.Process.Kill()
		err := <-b.done
		b.done <- err
		return fmt.Errorf("kafka did not exit within %v after SIGTERM; killed (see %s)", grace, b.Log)
	}
}
