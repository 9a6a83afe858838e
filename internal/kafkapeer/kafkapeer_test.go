package kafkapeer

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// The properties are the ones the broker benchmark wrote before it shared
// this package: Kafka's defaults but for a one-node cluster.
func TestPropertiesBench(t *testing.T) {
	want := `process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:9093
listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
advertised.listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=/d
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
`
	if got := (Node{Port: 9092, ControllerPort: 9093, LogDir: "/d"}).Properties(); got != want {
		t.Fatalf("properties:\n%s\nwant:\n%s", got, want)
	}
}

// With extra lines, the properties hold the same settings as the stream
// tests' own configuration did, in some order.
func TestPropertiesExtra(t *testing.T) {
	want := strings.Fields(`
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:9093
listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
advertised.listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=/d
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
`)
	n := Node{Port: 9092, ControllerPort: 9093, LogDir: "/d",
		Extra: []string{"num.partitions=1", "offsets.topic.num.partitions=3", "transaction.state.log.num.partitions=3"}}
	got := strings.Fields(n.Properties())
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("properties %q\nwant %q", got, want)
	}
	if n.Addr() != "127.0.0.1:9092" {
		t.Fatalf("addr %s", n.Addr())
	}
}

// A command runs the class through the tool with the install's
// environment.
func TestCommand(t *testing.T) {
	in := Install{Home: "/k", Tool: "/s/kafka-tool.sh"}
	cmd := in.Command(context.Background(), "-Xmx1G", "-Dx", "kafka.Kafka", "p")
	if cmd.Path != "/s/kafka-tool.sh" || !slices.Equal(cmd.Args, []string{"/s/kafka-tool.sh", "kafka.Kafka", "p"}) {
		t.Fatalf("command %s %q", cmd.Path, cmd.Args)
	}
	for _, e := range []string{"KAFKA_HOME=/k", "KAFKA_HEAP_OPTS=-Xmx1G", "KAFKA_OPTS=-Dx"} {
		if !slices.Contains(cmd.Env, e) {
			t.Errorf("no %s in the environment", e)
		}
	}
	if why := (Install{Home: t.TempDir(), Tool: "/nonexistent"}).Check(); !strings.Contains(why, "no Kafka jars") {
		t.Fatalf("check of an empty install: %q", why)
	}
}

// A cluster's nodes share one static quorum of all of them, each with
// its own id and ports, and replicate the internal topics three times.
func TestClusterProperties(t *testing.T) {
	c, err := NewCluster(3, func(id int) string { return "/d/" + string(rune('0'+id)) })
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Nodes) != 3 {
		t.Fatalf("%d nodes", len(c.Nodes))
	}
	var addrs []string
	for i, n := range c.Nodes {
		addrs = append(addrs, n.Addr())
		p := strings.Fields(n.Properties())
		id := string(rune('1' + i))
		for _, want := range []string{
			"node.id=" + id,
			"log.dirs=/d/" + id,
			"controller.quorum.voters=" + c.Nodes[0].Voters,
			"offsets.topic.replication.factor=3",
			"transaction.state.log.replication.factor=3",
			"transaction.state.log.min.isr=2",
		} {
			if !slices.Contains(p, want) {
				t.Errorf("node %d: no %s in %q", i+1, want, p)
			}
		}
		if slices.ContainsFunc(p, func(l string) bool { return strings.HasPrefix(l, "controller.quorum.bootstrap.servers=") }) {
			t.Errorf("node %d: a static quorum node has bootstrap servers too", i+1)
		}
	}
	voters := strings.Split(c.Nodes[0].Voters, ",")
	if len(voters) != 3 || !strings.HasPrefix(voters[0], "1@127.0.0.1:") || !strings.HasPrefix(voters[2], "3@127.0.0.1:") {
		t.Fatalf("voters %q", voters)
	}
	if c.Bootstrap() != strings.Join(addrs, ",") {
		t.Fatalf("bootstrap %q, want %q", c.Bootstrap(), strings.Join(addrs, ","))
	}
	if _, err := NewCluster(0, func(int) string { return "" }); err == nil {
		t.Fatal("a cluster of no nodes was made")
	}
}
