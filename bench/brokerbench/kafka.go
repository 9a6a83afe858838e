package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
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
	jars, _ := filepath.Glob(filepath.Join(k.home, "libs", "kafka_2.13-*.jar"))
	if len(jars) == 0 {
		return fmt.Sprintf("no Kafka jars in %s/libs; run scripts/fetch-kafka.sh and pass -kafka-home or set KAFKA_HOME", k.home)
	}
	if !fileExists(filepath.Join(k.scripts, "kafka-tool.sh")) {
		return fmt.Sprintf("%s not found", filepath.Join(k.scripts, "kafka-tool.sh"))
	}
	if _, err := exec.LookPath("java"); err != nil {
		return "java is not on PATH"
	}
	return ""
}

// tool returns a command running a Kafka main class through
// scripts/kafka-tool.sh, with heap and extra JVM options.
func (k *kafkaPeer) tool(ctx context.Context, heap, opts, class string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(k.scripts, "kafka-tool.sh"), append([]string{class}, args...)...)
	cmd.Env = append(os.Environ(), "KAFKA_HOME="+k.home, "KAFKA_HEAP_OPTS="+heap, "KAFKA_OPTS="+opts)
	return cmd
}

func (k *kafkaPeer) start(ctx context.Context, dir string) (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cport, err := freePort()
	if err != nil {
		return nil, err
	}
	props := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(props, []byte(kafkaProperties(port, cport, filepath.Join(dir, "data"))), 0o644); err != nil {
		return nil, err
	}

	out, err := k.tool(ctx, "-Xmx256M", "", "kafka.tools.StorageTool", "random-uuid").Output()
	if err != nil {
		return nil, fmt.Errorf("kafka StorageTool random-uuid: %w", err)
	}
	clusterID := strings.TrimSpace(string(out))
	format := k.tool(ctx, "-Xmx256M", "", "kafka.tools.StorageTool", "format", "--standalone", "-t", clusterID, "-c", props)
	if b, err := format.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("kafka StorageTool format: %v\n%s", err, b)
	}

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// Not CommandContext: the broker is stopped with SIGTERM by process.stop.
	cmd := k.tool(context.Background(), kafkaHeap, kafkaJVMOpts, "kafka.Kafka", props)
	p, err := startBackground(cmd, filepath.Join(dir, "kafka.log"))
	if err != nil {
		return nil, err
	}
	p.addr = addr
	if err := waitKafkaReady(ctx, p, 120*time.Second); err != nil {
		_ = p.stop(10 * time.Second)
		return nil, err
	}
	return p, nil
}

// kafkaProperties is a one-node KRaft configuration. Replication factors and
// min ISR of the internal topics are 1; everything else, including the
// flush policy, is Kafka's default.
func kafkaProperties(port, cport int, logDir string) string {
	return fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:%[2]d
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=%[3]s
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
`, port, cport, logDir)
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

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
