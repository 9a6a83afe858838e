package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/kafkapeer"
)

// kafkaHeap and kafkaJVMOpts are the broker's JVM flags, those of Kafka's
// own kafka-server-start.sh.
const (
	kafkaHeap    = "-Xmx1G -Xms1G"
	kafkaJVMOpts = "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true"
)

// kafkaPeer runs Apache Kafka in KRaft mode, one node that is both broker
// and controller, from the jars scripts/fetch-kafka.sh installs, through
// scripts/kafka-tool.sh (which execs java, so the broker's pid is the JVM's).
// Its flush settings are Kafka's defaults (log.flush.interval.messages and
// log.flush.interval.ms unset): it acknowledges from the page cache and
// does not fsync per write.
type kafkaPeer struct {
	home    string // KAFKA_HOME; "" means ask scripts/fetch-kafka.sh
	scripts string // the repository's scripts/ directory
	prog    *progress
}

func (*kafkaPeer) name() string { return "kafka" }

func (*kafkaPeer) durability() string {
	return "Kafka default flush: ack from page cache, no fsync per write"
}

// resolveHome finds the Kafka install: -kafka-home or $KAFKA_HOME if set,
// else whatever scripts/fetch-kafka.sh prints (it returns at once when the
// jars are already there, and fetches them from Maven Central otherwise).
// It returns why Kafka cannot be run, or "".
func (k *kafkaPeer) resolveHome(ctx context.Context) (whyNot string) {
	if k.home == "" {
		k.home = os.Getenv("KAFKA_HOME")
	}
	if k.home == "" {
		fetch := filepath.Join(k.scripts, "fetch-kafka.sh")
		if !fileExists(fetch) {
			return fmt.Sprintf("%s not found; pass -kafka-home or set KAFKA_HOME", fetch)
		}
		k.prog.printf("kafka: %s", fetch)
		cmd := exec.CommandContext(ctx, fetch)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Sprintf("%s failed: %v", fetch, err)
		}
		k.home = strings.TrimSpace(string(out))
	}
	if why := k.install().Check(); why != "" {
		return why + "; pass -kafka-home or set KAFKA_HOME"
	}
	return ""
}

// install is the Kafka install the peer runs.
func (k *kafkaPeer) install() kafkapeer.Install {
	return kafkapeer.Install{Home: k.home, Tool: filepath.Join(k.scripts, "kafka-tool.sh")}
}

func (k *kafkaPeer) start(ctx context.Context, dir string) (*process, error) {
	// Kafka's defaults but for a one-node cluster, its flush policy
	// included.
	node, err := kafkapeer.NewNode(filepath.Join(dir, "data"))
	if err != nil {
		return nil, err
	}
	props, err := k.install().Format(ctx, node, dir)
	if err != nil {
		return nil, err
	}
	// Not CommandContext: the broker is stopped with SIGTERM by process.stop.
	cmd := k.install().Command(context.Background(), kafkaHeap, kafkaJVMOpts, "kafka.Kafka", props)
	p, err := startBackground(cmd, filepath.Join(dir, "kafka.log"))
	if err != nil {
		return nil, err
	}
	p.addr = node.Addr()
	if err := waitKafkaReady(ctx, p, 120*time.Second); err != nil {
		_ = p.stop(10 * time.Second)
		return nil, err
	}
	return p, nil
}

// waitKafkaReady polls the broker until it answers Metadata with itself as
// a broker, or the process exits, or the timeout passes.
func waitKafkaReady(ctx context.Context, p *process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if gone, err := p.exited(); gone {
			return fmt.Errorf("kafka exited during start-up (%v); see %s", err, p.log)
		}
		if err := pingBroker(ctx, p.addr); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("kafka not ready at %s within %v; see %s", p.addr, timeout, p.log)
}

func pingBroker(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return err
	}
	if len(m.Brokers) == 0 {
		return errors.New("no brokers in metadata")
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
