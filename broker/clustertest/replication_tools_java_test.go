package clustertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Apache Kafka's partition tools against a three-broker Runnel cluster:
// kafka-reassign-partitions (generate, execute, verify) and
// kafka-leader-election (preferred and unclean).

// runJavaTool runs a Kafka tool class and returns its stdout and stderr,
// leaving a failure to the caller (a --verify that is not done yet exits
// non-zero in some versions).
func runJavaTool(t *testing.T, ctx context.Context, tool, class string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, tool, append([]string{class}, args...)...)
	cmd.Env = append(cmd.Environ(), "KAFKA_OPTS=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s: %v (%v)", class[strings.LastIndex(class, ".")+1:], strings.Join(args, " "), time.Since(start).Round(time.Millisecond), err)
	return stdout.String(), stderr.String(), err
}

// reassignmentJSON is the file format of kafka-reassign-partitions.
type reassignmentJSON struct {
	Version    int `json:"version"`
	Partitions []struct {
		Topic     string   `json:"topic"`
		Partition int32    `json:"partition"`
		Replicas  []int32  `json:"replicas"`
		LogDirs   []string `json:"log_dirs"`
	} `json:"partitions"`
}

// kafka-reassign-partitions moves a two-replica partition with data off
// broker 1: --generate proposes replicas on brokers 2 and 3 only,
// --execute starts the move, --verify reports it complete; then every
// record is still there and broker 1 has deleted its copy.
func TestReplicationJavaReassignPartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	_, tool := kafkaHome(t)
	c := startCluster(t, 3, 3)
	cl := c.client(kgo.RequiredAcks(kgo.AllISRAcks()))
	adm := kadm.NewClient(cl)
	const topic, n = "jreassign", 300
	createAssigned(t, cl, topic, map[string]string{"min.insync.replicas": "1"}, 1, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	var want []string
	for i := range n {
		v := fmt.Sprintf("v%d", i)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}, nil)
		want = append(want, v)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	seeds := strings.Join(c.seeds(), ",")
	dir := t.TempDir()
	move := filepath.Join(dir, "move.json")
	if err := os.WriteFile(move, []byte(`{"version":1,"topics":[{"topic":"`+topic+`"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}

	const class = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
	out := javaTool(t, ctx, tool, "", class, "--bootstrap-server", seeds, "--topics-to-move-json-file", move, "--broker-list", "2,3", "--generate")
	t.Logf("--generate:\n%s", out)
	_, proposedText, ok := strings.Cut(out, "Proposed partition reassignment configuration")
	if !ok {
		t.Fatalf("--generate printed no proposal:\n%s", out)
	}
	var proposed reassignmentJSON
	if err := json.Unmarshal([]byte(strings.TrimSpace(proposedText)), &proposed); err != nil {
		t.Fatalf("proposal %q: %v", proposedText, err)
	}
	if len(proposed.Partitions) != 1 {
		t.Fatalf("proposal %+v", proposed)
	}
	target := slices.Clone(proposed.Partitions[0].Replicas)
	if sorted := slices.Sorted(slices.Values(target)); !slices.Equal(sorted, []int32{2, 3}) {
		t.Fatalf("proposed replicas %v, want brokers 2 and 3", target)
	}
	plan := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(plan, []byte(strings.TrimSpace(proposedText)), 0o644); err != nil {
		t.Fatal(err)
	}

	out = javaTool(t, ctx, tool, "", class, "--bootstrap-server", seeds, "--reassignment-json-file", plan, "--execute")
	t.Logf("--execute:\n%s", out)
	if !strings.Contains(out, "Successfully started partition reassignment") {
		t.Fatalf("--execute did not start the reassignment:\n%s", out)
	}

	deadline := time.Now().Add(120 * time.Second)
	for {
		out, errOut, err := runJavaTool(t, ctx, tool, class, "--bootstrap-server", seeds, "--reassignment-json-file", plan, "--verify")
		if err == nil && strings.Contains(out, "Reassignment of partition "+topic+"-0 is completed") {
			t.Logf("--verify:\n%s", out)
			if strings.Contains(errOut, " ERROR ") {
				t.Fatalf("--verify logged errors:\n%s", errOut)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("--verify: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
		}
	}
	waitTopicState(t, adm, topic, "the new replicas", func(p kadm.PartitionDetail) bool {
		return slices.Equal(p.Replicas, target) && len(p.ISR) == 2 && p.Leader == target[0]
	})
	if got := consumeCluster(t, c, topic); !slices.Equal(got, want) {
		t.Fatalf("after the move read %d records, want %d (first %v)", len(got), len(want), got[:min(5, len(got))])
	}
	gone := filepath.Join(c.nodes[0].dir, "logs", topic+"-0")
	for deadline := time.Now().Add(60 * time.Second); ; {
		if _, err := os.Stat(gone); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker 1 kept %s after leaving the replicas", gone)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kafka-leader-election: a preferred election gives the lead back to the
// first replica once it is in the ISR again, and an unclean election
// brings a partition whose whole ISR is gone back online on the
// out-of-sync replica that is left.
func TestReplicationJavaLeaderElection(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	_, tool := kafkaHome(t)
	// The quorum is broker 1 alone, so brokers 2 and 3 can both be down
	// with the controller up.
	c := startCluster(t, 3, 1)
	cl := c.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProduceRequestTimeout(20*time.Second))
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	seeds := strings.Join(c.seeds(), ",")
	const class = "org.apache.kafka.tools.LeaderElectionCommand"

	createAssigned(t, cl, "jpreferred", nil, 2, 1, 3)
	c.terminate(2)
	waitPartitionState(t, adm, "jpreferred", "the lead moved off 2", func(l int32, isr []int32) bool { return l > 0 && l != 2 })
	c.restart(2)
	waitPartitionState(t, adm, "jpreferred", "2 back in the ISR", func(l int32, isr []int32) bool { return l != 2 && len(isr) == 3 })
	out := javaTool(t, ctx, tool, "", class, "--bootstrap-server", seeds, "--election-type", "preferred", "--topic", "jpreferred", "--partition", "0")
	t.Logf("preferred:\n%s", out)
	if !strings.Contains(out, "Successfully completed leader election (PREFERRED) for partitions jpreferred-0") {
		t.Fatalf("preferred election:\n%s", out)
	}
	waitPartitionState(t, adm, "jpreferred", "2 leading again", func(l int32, isr []int32) bool { return l == 2 })
	// Every partition: those led by their preferred replica need none.
	out = javaTool(t, ctx, tool, "", class, "--bootstrap-server", seeds, "--election-type", "preferred", "--all-topic-partitions")
	t.Logf("preferred, all partitions:\n%s", out)
	if strings.Contains(out, "jpreferred-0") && !strings.Contains(out, "Valid replica already elected for partitions") {
		t.Fatalf("preferred election of every partition:\n%s", out)
	}

	// Unclean: the ISR (3, then 2) dies; 3 comes back out of sync.
	createAssigned(t, cl, "junclean", map[string]string{"min.insync.replicas": "1"}, 3, 2)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "junclean", Value: []byte("a")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c.kill(3)
	waitPartitionState(t, adm, "junclean", "3 out of the ISR", func(l int32, isr []int32) bool { return l == 2 && slices.Equal(isr, []int32{2}) })
	c.kill(2)
	c.restart(3)
	waitPartitionState(t, adm, "junclean", "the partition offline", func(l int32, isr []int32) bool { return l < 0 })
	out = javaTool(t, ctx, tool, "", class, "--bootstrap-server", seeds, "--election-type", "unclean", "--topic", "junclean", "--partition", "0")
	t.Logf("unclean:\n%s", out)
	if !strings.Contains(out, "Successfully completed leader election (UNCLEAN) for partitions junclean-0") {
		t.Fatalf("unclean election:\n%s", out)
	}
	waitPartitionState(t, adm, "junclean", "3 elected uncleanly", func(l int32, isr []int32) bool { return l == 3 && slices.Equal(isr, []int32{3}) })
}
