package clustertest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafka-reassign-partitions --execute --throttle moves a partition off
// broker 1 with the throttle in place (the rates on every broker taking
// part, the replica lists on the topic), and --verify, once the move is
// done, removes every throttle config it set: none is left behind.
// Before the throttle configs were known, --execute failed with
// INVALID_CONFIG.
func TestReplicationJavaReassignThrottle(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	_, tool := kafkaHome(t)
	addrs, _ := startInProcessCluster(t, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	const topic = "jthrottle"
	createAssigned(t, cl, topic, map[string]string{"min.insync.replicas": "1"}, 1, 2)
	produceRandom(t, cl, topic, 128, 16<<10) // 2 MiB
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()

	plan := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(plan, []byte(`{"version":1,"partitions":[{"topic":"`+topic+`","partition":0,"replicas":[2,3],"log_dirs":["any","any"]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	seeds := strings.Join(addrs, ",")
	const class = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
	out := javaTool(t, ctx, tool, "", class, "--bootstrap-server", seeds, "--reassignment-json-file", plan, "--execute", "--throttle", "1000000")
	t.Logf("--execute --throttle:\n%s", out)
	if !strings.Contains(out, "Successfully started partition reassignment") || !strings.Contains(out, "1000000") {
		t.Fatalf("--execute --throttle did not start a throttled reassignment:\n%s", out)
	}
	// What the tool set: the rates on each broker of the move, the
	// lists on the topic.
	for id := int32(1); id <= 3; id++ {
		c := describeBrokerOn(t, cl, id)
		for _, name := range []string{leaderRate, followerRate} {
			if c[name].value != "1000000" || c[name].source != kmsg.ConfigSourceDynamicBrokerConfig {
				t.Errorf("broker %d after --execute: %s = %v", id, name, c[name])
			}
		}
	}
	tc := describeConfigs(t, addrs[0], kmsg.ConfigResourceTypeTopic, topic)
	if got := listItems(tc[leaderReplicas].value); !slices.Equal(got, []string{"0:1", "0:2"}) {
		t.Errorf("%s after --execute: %v", leaderReplicas, tc[leaderReplicas])
	}
	if got := listItems(tc[followerReplicas].value); !slices.Equal(got, []string{"0:3"}) {
		t.Errorf("%s after --execute: %v", followerReplicas, tc[followerReplicas])
	}

	deadline := time.Now().Add(120 * time.Second)
	for {
		out, errOut, err := runJavaTool(t, ctx, tool, class, "--bootstrap-server", seeds, "--reassignment-json-file", plan, "--verify")
		if err == nil && strings.Contains(out, "Reassignment of partition "+topic+"-0 is completed") {
			t.Logf("--verify:\n%s", out)
			if strings.Contains(errOut, " ERROR ") {
				t.Fatalf("--verify logged errors:\n%s", errOut)
			}
			if !strings.Contains(out, "Clearing broker-level throttles") || !strings.Contains(out, "Clearing topic-level throttles") {
				t.Fatalf("--verify did not clear the throttles:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("--verify: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
		}
	}
	waitTopicState(t, adm, topic, "the new replicas", func(p kadm.PartitionDetail) bool {
		return slices.Equal(p.Replicas, []int32{2, 3}) && len(p.ISR) == 2
	})
	// The throttles are cleared through the controller; each broker
	// describes them cleared once its copy of the metadata has caught up,
	// which may come just after --verify returns.
	var left []string
	cleared := time.Now().Add(20 * time.Second)
	for {
		left = left[:0]
		for id := int32(1); id <= 3; id++ {
			c := describeBrokerOn(t, cl, id)
			for _, name := range []string{leaderRate, followerRate} {
				if c[name].value != noThrottle || c[name].source != kmsg.ConfigSourceDefaultConfig {
					left = append(left, fmt.Sprintf("broker %d: %s = %v", id, name, c[name]))
				}
			}
		}
		if dc := describeConfigs(t, addrs[0], kmsg.ConfigResourceTypeBroker, ""); len(dc) != 0 {
			left = append(left, fmt.Sprintf("cluster defaults: %v", dc))
		}
		tc = describeConfigs(t, addrs[1], kmsg.ConfigResourceTypeTopic, topic)
		for _, name := range []string{leaderReplicas, followerReplicas} {
			if tc[name].source != kmsg.ConfigSourceDefaultConfig {
				left = append(left, fmt.Sprintf("topic: %s = %v", name, tc[name]))
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(cleared) {
			t.Fatalf("throttles left after --verify:\n%s", strings.Join(left, "\n"))
		}
		time.Sleep(50 * time.Millisecond) // polling the brokers' copies of the metadata
	}
}

// describeBrokerOn describes broker id's own configs, on that broker:
// only it serves its resource.
func describeBrokerOn(t *testing.T, cl *kgo.Client, id int32) map[string]describedConfig {
	t.Helper()
	return describeWith(t, cl.Broker(int(id)), kmsg.ConfigResourceTypeBroker, strconv.Itoa(int(id)))
}

// listItems is a list config's items, sorted.
func listItems(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}
