package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/bench/kafkabroker"
	"github.com/runnel-dev/runnel/internal/kafkapeer"
)

// kafkaPeer runs Apache Kafka in KRaft mode, one node that is both broker
// and controller (or nodes of them in one cluster), from the jars scripts/fetch-kafka.sh installs, through
// scripts/kafka-tool.sh (which execs java, so the broker's pid is the JVM's).
// Its flush settings are Kafka's defaults (log.flush.interval.messages and
// log.flush.interval.ms unset): it acknowledges from the page cache and
// does not fsync per write.
type kafkaPeer struct {
	home    string // KAFKA_HOME; "" means ask scripts/fetch-kafka.sh
	scripts string // the repository's scripts/ directory
	prog    *progress
	nodes   int // brokers; more than 1 runs a cluster (startCluster)
	// sec adds a client listener of its protocol (SSL or SASL_SSL) to the
	// single node, which the benchmark's clients use; nil is plaintext.
	// The PLAINTEXT listener stays for the node's own inter-broker
	// listener and for creating the SCRAM user.
	sec *security
}

func (k *kafkaPeer) name() string { return peerName("kafka", k.sec) }

func (k *kafkaPeer) durability() string {
	if k.nodes > 1 {
		return "acks=all: every ISR member has the batch in its page cache (Kafka default flush, no fsync per write)"
	}
	return "Kafka default flush: ack from page cache, no fsync per write"
}

// resolveHome finds the Kafka install (kafkabroker.Resolve): -kafka-home,
// $KAFKA_HOME, or what scripts/fetch-kafka.sh prints. It returns why Kafka
// cannot be run, or "".
func (k *kafkaPeer) resolveHome(ctx context.Context) (whyNot string) {
	in, why := kafkabroker.Resolve(ctx, k.home, k.scripts, k.prog.printf)
	k.home = in.Home
	return why
}

// install is the Kafka install the peer runs.
func (k *kafkaPeer) install() kafkapeer.Install {
	return kafkapeer.Install{Home: k.home, Tool: filepath.Join(k.scripts, "kafka-tool.sh")}
}

func (k *kafkaPeer) start(ctx context.Context, dir string) (*cluster, error) {
	if k.nodes > 1 {
		return k.startCluster(ctx, dir)
	}
	// Kafka's defaults but for a one-node cluster, its flush policy
	// included.
	node, err := kafkapeer.NewNode(filepath.Join(dir, "data"))
	if err != nil {
		return nil, err
	}
	securePort := 0
	if k.sec != nil {
		if securePort, err = kafkapeer.FreePort(); err != nil {
			return nil, err
		}
		node.Extra = append(node.Extra, kafkaSecurityProperties(node, securePort, k.sec)...)
	}
	props, err := k.install().Format(ctx, node, dir)
	if err != nil {
		return nil, err
	}
	// Not CommandContext: the broker is stopped with SIGTERM by process.stop.
	cmd := k.install().Command(context.Background(), kafkabroker.Heap, kafkabroker.JVMOpts, "kafka.Kafka", props)
	p, err := startBackground(cmd, filepath.Join(dir, "kafka.log"))
	if err != nil {
		return nil, err
	}
	p.addr = node.Addr()
	c := &cluster{procs: []*process{p}}
	if err := waitClusterReady(ctx, c, 120*time.Second); err != nil {
		_ = c.stop(10 * time.Second)
		return nil, err
	}
	if k.sec != nil {
		if err := k.secure(ctx, c, securePort); err != nil {
			_ = c.stop(10 * time.Second)
			return nil, err
		}
	}
	return c, nil
}

// kafkaSecurityProperties are the server.properties lines that add the
// client listener SECURE of sec's protocol on securePort to node (later
// lines of a properties file override earlier ones): the certificate and
// key inline as PEM (ssl.keystore.type=PEM), no client certificates, and
// for SASL_SSL SCRAM-SHA-512.
func kafkaSecurityProperties(node kafkapeer.Node, securePort int, sec *security) []string {
	lines := []string{
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d,SECURE://127.0.0.1:%d", node.Port, node.ControllerPort, securePort),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d,SECURE://127.0.0.1:%d", node.Port, node.ControllerPort, securePort),
		"listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SECURE:" + sec.protocol(),
		"ssl.keystore.type=PEM",
		"ssl.keystore.certificate.chain=" + kafkaPEM(sec.certPEM),
		"ssl.keystore.key=" + kafkaPEM(sec.keyPEM),
		"ssl.client.auth=none",
	}
	if sec.mode == saslSSL {
		lines = append(lines,
			"sasl.enabled.mechanisms=SCRAM-SHA-512",
			"listener.name.secure.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;")
	}
	return lines
}

// secure switches c's clients to the SECURE listener on securePort, once
// the SCRAM user exists (created over PLAINTEXT, as an operator would with
// kafka-configs) and a secured client gets the metadata.
func (k *kafkaPeer) secure(ctx context.Context, c *cluster, securePort int) error {
	if k.sec.mode == saslSSL {
		cl, err := kgo.NewClient(c.clientOpts()...)
		if err != nil {
			return err
		}
		defer cl.Close()
		res, err := kadm.NewClient(cl).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{
			User: benchUser, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: benchPassword,
		}})
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			return fmt.Errorf("create SCRAM user %s: %w", benchUser, err)
		}
	}
	c.procs[0].addr = fmt.Sprintf("127.0.0.1:%d", securePort)
	c.sec = k.sec
	return waitClusterReady(ctx, c, 60*time.Second)
}

// startCluster runs k.nodes Kafka nodes, each broker and controller in
// its own JVM with Kafka's own heap and flags, on one static controller
// quorum of all of them; the rest is Kafka's defaults, flush policy
// included.
func (k *kafkaPeer) startCluster(ctx context.Context, dir string) (*cluster, error) {
	nodeDir := func(id int) string { return filepath.Join(dir, "node-"+strconv.Itoa(id)) }
	kc, err := kafkapeer.NewCluster(k.nodes, func(id int) string { return filepath.Join(nodeDir(id), "data") })
	if err != nil {
		return nil, err
	}
	for _, n := range kc.Nodes {
		if err := os.MkdirAll(nodeDir(n.ID), 0o755); err != nil {
			return nil, err
		}
	}
	props, err := k.install().FormatCluster(ctx, kc, nodeDir)
	if err != nil {
		return nil, err
	}
	c := &cluster{}
	for i, n := range kc.Nodes {
		cmd := k.install().Command(context.Background(), kafkabroker.Heap, kafkabroker.JVMOpts, "kafka.Kafka", props[i])
		p, err := startBackground(cmd, filepath.Join(nodeDir(n.ID), "kafka.log"))
		if err != nil {
			_ = c.stop(10 * time.Second)
			return nil, err
		}
		p.addr = n.Addr()
		c.procs = append(c.procs, p)
	}
	if err := waitClusterReady(ctx, c, 180*time.Second); err != nil {
		_ = c.stop(30 * time.Second)
		return nil, err
	}
	return c, nil
}

// pingBrokers asks the cluster's brokers for its metadata, with the
// cluster's client security, and fails unless it lists at least want
// brokers.
func pingBrokers(ctx context.Context, c *cluster, want int) error {
	cl, err := kgo.NewClient(c.clientOpts()...)
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
	if len(m.Brokers) < want {
		return fmt.Errorf("%w: %d of %d", errTooFewBrokers, len(m.Brokers), want)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
