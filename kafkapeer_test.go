package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/kafkapeer"
)

// An Apache Kafka 4.x broker for the tests that run the same topologies on
// Kafka and on Runnel's broker: one KRaft node (broker and controller in one
// JVM) on free loopback ports with its data in a temporary directory,
// started from the jars scripts/fetch-kafka.sh installs, through
// scripts/kafka-tool.sh. It starts once per test binary, on first use (it
// takes ten seconds and more), and TestMain stops it.

// kafkaPeerHeap is the broker's heap: Kafka's scripts ask for 1 GiB; 768 MiB
// is plenty for a test's few topics and leaves room on a small machine.
const (
	kafkaPeerHeap    = "-Xmx768M -Xms768M"
	kafkaPeerJVMOpts = "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true"
	kafkaPeerStartup = 3 * time.Minute // generous: a loaded 2-core machine starts a JVM slowly
)

var kafkaPeer struct {
	once sync.Once
	addr string
	err  error

	dir    string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the JVM exited
	waited error         // the JVM's exit status; set before exited is closed
}

// requirePeers reports whether a missing peer fails the test rather than
// skipping it, as in CI.
func requirePeers() bool { return os.Getenv("RUNNEL_REQUIRE_PEERS") == "1" }

// kafkaPeerAddr returns the address of the shared Apache Kafka broker,
// starting it on first use. It skips the test when the jars or java are
// missing (fails under RUNNEL_REQUIRE_PEERS=1).
func kafkaPeerAddr(t *testing.T) string {
	t.Helper()
	home, tool, whyNot := kafkaPeerInstall()
	if whyNot != "" {
		if requirePeers() {
			t.Fatalf("Apache Kafka: %s (RUNNEL_REQUIRE_PEERS=1)", whyNot)
		}
		t.Skipf("Apache Kafka: %s; set RUNNEL_REQUIRE_PEERS=1 to fail instead", whyNot)
	}
	kafkaPeer.once.Do(func() {
		kafkaPeer.addr, kafkaPeer.err = startKafkaPeer(home, tool)
	})
	if kafkaPeer.err != nil {
		t.Fatalf("Apache Kafka: %v", kafkaPeer.err)
	}
	return kafkaPeer.addr
}

// kafkaPeerInstall finds the Kafka jars and scripts/kafka-tool.sh, or says
// why Kafka cannot run here.
func kafkaPeerInstall() (home, tool, whyNot string) {
	in, whyNot := kafkapeer.Find()
	return in.Home, in.Tool, whyNot
}

// startKafkaPeer formats a data directory and starts the broker, waiting
// until it creates topics.
func startKafkaPeer(home, tool string) (addr string, err error) {
	dir, err := os.MkdirTemp("", "runnel-kafka-peer-")
	if err != nil {
		return "", err
	}
	kafkaPeer.dir = dir
	defer func() {
		if err != nil {
			stopKafkaPeer()
		}
	}()
	node, err := kafkapeer.NewNode(filepath.Join(dir, "data"),
		"num.partitions=1", "offsets.topic.num.partitions=3", "transaction.state.log.num.partitions=3")
	if err != nil {
		return "", err
	}
	addr = node.Addr()
	install := kafkapeer.Install{Home: home, Tool: tool}
	ctx, cancel := context.WithTimeout(context.Background(), kafkaPeerStartup)
	defer cancel()
	props, err := install.Format(ctx, node, dir)
	if err != nil {
		return "", err
	}

	logPath := filepath.Join(dir, "kafka.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logFile.Close() // the child has its own descriptor
	// Not CommandContext: stopKafkaPeer stops it with SIGTERM.
	cmd := install.Command(context.Background(), kafkaPeerHeap, kafkaPeerJVMOpts, "kafka.Kafka", props)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The JVM dies with the test binary even when TestMain never gets to
	// stop it (a panic, a test timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	kafkaPeer.cmd, kafkaPeer.exited = cmd, make(chan struct{})
	go func() {
		kafkaPeer.waited = cmd.Wait()
		close(kafkaPeer.exited)
	}()
	if err := waitKafkaPeer(ctx, addr); err != nil {
		log, _ := os.ReadFile(logPath)
		if len(log) > 4000 {
			log = log[len(log)-4000:]
		}
		return "", fmt.Errorf("%w; the end of %s:\n%s", err, logPath, log)
	}
	return addr, nil
}

// waitKafkaPeer polls until the broker creates a topic: it answers
// Metadata before it is unfenced, and only then can it host partitions.
func waitKafkaPeer(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var last error
	for {
		select {
		case <-kafkaPeer.exited:
			return fmt.Errorf("kafka exited during start-up: %v", kafkaPeer.waited)
		case <-ctx.Done():
			return fmt.Errorf("kafka not ready at %s within %v: %v", addr, kafkaPeerStartup, last)
		default:
		}
		reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := adm.CreateTopic(reqCtx, 1, 1, nil, "runnel-peer-ready")
		cancel()
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		last = err
		select {
		case <-kafkaPeer.exited:
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond): // polling a starting broker
		}
	}
}

// stopKafkaPeer stops the broker if it was started (SIGTERM, then SIGKILL
// after 30 s) and removes its directory.
func stopKafkaPeer() {
	if cmd := kafkaPeer.cmd; cmd != nil {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-kafkaPeer.exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-kafkaPeer.exited
		}
		kafkaPeer.cmd = nil
	}
	if kafkaPeer.dir != "" {
		os.RemoveAll(kafkaPeer.dir)
		kafkaPeer.dir = ""
	}
}
