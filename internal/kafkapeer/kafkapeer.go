// Package kafkapeer runs Apache Kafka as a peer for Runnel's tests and
// benchmarks: one KRaft node, broker and controller in one JVM, on
// loopback ports, from the jars scripts/fetch-kafka.sh installs, through
// scripts/kafka-tool.sh (which execs java, so the process is the JVM); or
// a Cluster of such combined nodes, one JVM each, sharing a static
// controller quorum (controller.quorum.voters).
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
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/runnel-dev/runnel/internal/freeport"
)

// Node is the configuration of a one-node KRaft cluster, or of one
// combined broker+controller node of a Cluster.
type Node struct {
	// ID is node.id; 0 means 1.
	ID int
	// Port and ControllerPort are the loopback ports of the client and
	// controller listeners.
	Port, ControllerPort int
	// Voters is controller.quorum.voters ("1@127.0.0.1:9093,..."), set
	// for a node of a Cluster; "" makes the node a cluster of its own,
	// formatted as a standalone controller.
	Voters string
	// InternalRF is the replication factor of the internal topics
	// (__consumer_offsets, __transaction_state, the share-group state
	// topic); their min.insync.replicas is min(2, InternalRF). 0 means 1.
	InternalRF int
	// LogDir holds the node's data (log.dirs).
	LogDir string
	// Extra lines are appended to the properties: the tests' small
	// internal topics, say. The rest is Kafka's default, flush policy
	// included.
	Extra []string
}

// Properties is the node's server.properties: replication factor
// InternalRF (default 1) for the internal topics, no initial rebalance
// delay, no topic auto-creation (a client must create what it uses).
func (n Node) Properties() string {
	id, rf := max(n.ID, 1), max(n.InternalRF, 1)
	quorum := fmt.Sprintf("controller.quorum.bootstrap.servers=127.0.0.1:%d", n.ControllerPort)
	if n.Voters != "" {
		quorum = "controller.quorum.voters=" + n.Voters
	}
	var b strings.Builder
	fmt.Fprintf(&b, `process.roles=broker,controller
node.id=%[4]d
%[5]s
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=%[3]s
offsets.topic.replication.factor=%[6]d
transaction.state.log.replication.factor=%[6]d
transaction.state.log.min.isr=%[7]d
share.coordinator.state.topic.replication.factor=%[6]d
share.coordinator.state.topic.min.isr=%[7]d
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
`, n.Port, n.ControllerPort, n.LogDir, id, quorum, rf, min(2, rf))
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
	clusterID, err := newClusterID()
	if err != nil {
		return "", err
	}
	return in.format(ctx, n, dir, clusterID)
}

// format writes n's properties to dir/server.properties and formats its
// storage with clusterID: as a standalone controller, or, for a node of
// a static quorum (Voters set), as one of its voters.
func (in Install) format(ctx context.Context, n Node, dir, clusterID string) (props string, err error) {
	props = filepath.Join(dir, "server.properties")
	if err := os.WriteFile(props, []byte(n.Properties()), 0o644); err != nil {
		return "", err
	}
	args := []string{"format", "-t", clusterID, "-c", props}
	if n.Voters == "" {
		args = append(args, "--standalone")
	}
	format := in.Command(ctx, "-Xmx256M", "", "kafka.tools.StorageTool", args...)
	if out, err := format.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kafka StorageTool format (node %d): %v\n%s", max(n.ID, 1), err, out)
	}
	return props, nil
}

// newClusterID returns a random UUID in Kafka's form (URL-safe base64 of
// 16 bytes, unpadded); making it here saves a JVM start. Like Kafka's
// Uuid.randomUuid, it never starts with '-', which the tool's argument
// parser would take for an option.
func newClusterID() (string, error) {
	var clusterID string
	for clusterID == "" || clusterID[0] == '-' {
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", err
		}
		clusterID = base64.RawURLEncoding.EncodeToString(raw[:])
	}
	return clusterID, nil
}

// Cluster is a KRaft cluster of combined broker+controller nodes, every
// one a voter of a static controller quorum, on loopback ports.
type Cluster struct {
	Nodes []Node
}

// NewCluster returns a cluster of n nodes (IDs 1..n) on free loopback
// ports, node i keeping its data in logDir(i), with internal topics
// replicated min(3, n) times, as a Kafka operator would set them.
func NewCluster(n int, logDir func(id int) string, extra ...string) (Cluster, error) {
	if n < 1 {
		return Cluster{}, fmt.Errorf("kafkapeer: a cluster of %d nodes", n)
	}
	var c Cluster
	var voters []string
	for id := 1; id <= n; id++ {
		node, err := NewNode(logDir(id), extra...)
		if err != nil {
			return Cluster{}, err
		}
		node.ID, node.InternalRF = id, min(3, n)
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", id, node.ControllerPort))
		c.Nodes = append(c.Nodes, node)
	}
	for i := range c.Nodes {
		c.Nodes[i].Voters = strings.Join(voters, ",")
	}
	return c, nil
}

// Bootstrap is the cluster's client addresses, comma-separated.
func (c Cluster) Bootstrap() string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return strings.Join(addrs, ",")
}

// FormatCluster formats every node's storage under one new cluster id,
// node i's properties in dir(i)/server.properties, and returns those
// files in node order. The formats run one after another: each is a
// JVM start, and running them at once on a small machine gains little.
func (in Install) FormatCluster(ctx context.Context, c Cluster, dir func(id int) string) ([]string, error) {
	clusterID, err := newClusterID()
	if err != nil {
		return nil, err
	}
	props := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		if props[i], err = in.format(ctx, n, dir(n.ID), clusterID); err != nil {
			return nil, err
		}
	}
	return props, nil
}

// FreePort returns a loopback port free now.
func FreePort() (int, error) {
	p, err := freeport.Ports(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
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

// Find locates the install the tests and benchmarks use: KAFKA_HOME (or
// RUNNEL_KAFKA_HOME, or ~/.cache/runnel/kafka-4.3.1 where
// scripts/fetch-kafka.sh puts it), and scripts/kafka-tool.sh of the
// module around the working directory, found by walking up to go.mod, so
// a test of any package finds it. whyNot says why Kafka cannot run here,
// or is "".
func Find() (in Install, whyNot string) {
	in.Home = os.Getenv("KAFKA_HOME")
	if in.Home == "" {
		in.Home = os.Getenv("RUNNEL_KAFKA_HOME")
	}
	if in.Home == "" {
		dir, err := os.UserHomeDir()
		if err != nil {
			return in, fmt.Sprintf("no home directory: %v", err)
		}
		in.Home = filepath.Join(dir, ".cache", "runnel", "kafka-4.3.1")
	}
	root, err := moduleRoot()
	if err != nil {
		return in, err.Error()
	}
	in.Tool = filepath.Join(root, "scripts", "kafka-tool.sh")
	return in, in.Check()
}

// moduleRoot is the nearest directory at or above the working directory
// that holds a go.mod whose scripts/ has kafka-tool.sh: the main module,
// also from the bench module below it.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "scripts", "kafka-tool.sh")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no scripts/kafka-tool.sh in a module at or above the working directory")
		}
		dir = parent
	}
}
