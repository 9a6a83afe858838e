// Package kafkapeer runs Apache Kafka as a peer for Runnel's tests and
// benchmarks: one KRaft node, broker and controller in one JVM, on
// loopback ports, from the jars scripts/fetch-kafka.sh installs, through
// scripts/kafka-tool.sh (which execs java, so the process is the JVM).
//
// It holds what the stream tests and the broker benchmark share — the
// node's configuration, formatting its storage, the command that runs a
// Kafka main class, free ports — while each keeps its own process
// management: the tests start one peer per test binary, the benchmark one
// per run.
package kafkapeer

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Node is a one-node KRaft cluster's configuration.
type Node struct {
	// Port and ControllerPort are the loopback ports of the client and
	// controller listeners.
	Port, ControllerPort int
	// LogDir holds the node's data (log.dirs).
	LogDir string
	// Extra lines are appended to the properties: the tests' small
	// internal topics, say. The rest is Kafka's default, flush policy
	// included.
	Extra []string
}

// Properties is the node's server.properties: replication factor and min
// ISR 1 for the internal topics, no initial rebalance delay, no topic
// auto-creation (a client must create what it uses).
func (n Node) Properties() string {
	var b strings.Builder
	fmt.Fprintf(&b, `process.roles=broker,controller
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
`, n.Port, n.ControllerPort, n.LogDir)
	for _, l := range n.Extra {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// Addr is the node's client address.
func (n Node) Addr() string { return fmt.Sprintf("127.0.0.1:%d", n.Port) }

// Install is a Kafka install and the script that runs its classes.
type Install struct {
	Home string // KAFKA_HOME: libs/ holds the jars
	Tool string // scripts/kafka-tool.sh
}

// Check says why the install cannot run Kafka here, or "" when it can.
func (in Install) Check() string {
	if jars, _ := filepath.Glob(filepath.Join(in.Home, "libs", "kafka_2.13-*.jar")); len(jars) == 0 {
		return fmt.Sprintf("no Kafka jars in %s/libs; run scripts/fetch-kafka.sh", in.Home)
	}
	if _, err := os.Stat(in.Tool); err != nil {
		return err.Error()
	}
	if _, err := exec.LookPath("java"); err != nil {
		return "no java on PATH"
	}
	return ""
}

// Command runs a Kafka main class with the given heap (KAFKA_HEAP_OPTS)
// and JVM options (KAFKA_OPTS).
func (in Install) Command(ctx context.Context, heap, opts, class string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, in.Tool, append([]string{class}, args...)...)
	cmd.Env = append(os.Environ(), "KAFKA_HOME="+in.Home, "KAFKA_HEAP_OPTS="+heap, "KAFKA_OPTS="+opts)
	return cmd
}

// Format writes n's properties to dir/server.properties and formats its
// storage under a new cluster id, as a standalone controller. It returns
// the properties file, the argument of kafka.Kafka.
func (in Install) Format(ctx context.Context, n Node, dir string) (props string, err error) {
	props = filepath.Join(dir, "server.properties")
	if err := os.WriteFile(props, []byte(n.Properties()), 0o644); err != nil {
		return "", err
	}
	// A cluster id is a random UUID in Kafka's form (URL-safe base64 of
	// 16 bytes, unpadded); making it here saves a JVM start. Like Kafka's
	// Uuid.randomUuid, it never starts with '-', which the tool's
	// argument parser would take for an option.
	var clusterID string
	for clusterID == "" || clusterID[0] == '-' {
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", err
		}
		clusterID = base64.RawURLEncoding.EncodeToString(raw[:])
	}
	format := in.Command(ctx, "-Xmx256M", "", "kafka.tools.StorageTool", "format", "--standalone", "-t", clusterID, "-c", props)
	if out, err := format.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kafka StorageTool format: %v\n%s", err, out)
	}
	return props, nil
}

// FreePort returns a loopback port free now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// NewNode returns a node on two free loopback ports with its data in
// logDir.
func NewNode(logDir string, extra ...string) (Node, error) {
	port, err := FreePort()
	if err != nil {
		return Node{}, err
	}
	cport, err := FreePort()
	if err != nil {
		return Node{}, err
	}
	return Node{Port: port, ControllerPort: cport, LogDir: logDir, Extra: extra}, nil
}
