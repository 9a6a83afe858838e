package broker_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// Apache Kafka's kafka-consumer-groups (ConsumerGroupCommand --describe)
// shows, for a group with an active member, the members, their
// partitions, and the same lag Runnel's metrics report. It uses
// FindCoordinator, DescribeGroups, OffsetFetch and ListOffsets. One JVM
// launch (the helpers are interop_helpers_test.go's and interop_test.go's).
func TestGroupKafkaConsumerGroupsDescribe(t *testing.T) {
	_, tool := kafkaHome(t)
	b := testutil.StartBroker(t, groupBrokerConfig())
	adm := newAdmin(t, b.Addr())
	const topic, parts, group = "jg", 3, "jg"
	createTopic(t, adm, topic, parts, nil)
	produceN(t, b.Addr(), topic, parts, 0, 30) // 10 per partition

	c := startConsumer(t, b.Addr(), group, topic, "jg-client", kgo.DisableAutoCommit())
	waitBalanced(t, adm, group, topic, parts, c)
	commits := map[string]map[int32]kgo.EpochOffset{topic: {}}
	for p, o := range []int64{3, 7, 10} {
		commits[topic][int32(p)] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	var commitErr error
	c.cl.CommitOffsetsSync(testContext(t), commits, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		commitErr = err
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 && commitErr == nil {
					commitErr = kerr.ErrorForCode(rp.ErrorCode)
				}
			}
		}
	})
	if commitErr != nil {
		t.Fatalf("commit: %v", commitErr)
	}
	want := map[string]float64{"jg/0": 7, "jg/1": 3, "jg/2": 0}
	testutil.Eventually(t, 10*time.Second, func() (bool, string) {
		got := scrapeGroupLag(t, b.MetricsAddr(), group)
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("metrics lag %v, want %v", got, want)
	})

	out := javaTool(t, testContext(t), tool, "", "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
		"--bootstrap-server", b.Addr(), "--describe", "--group", group)
	t.Logf("kafka-consumer-groups --describe:\n%s", out)
	rows := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != group {
			continue
		}
		// GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
		key := f[1] + "/" + f[2]
		lag, err := strconv.ParseFloat(f[5], 64)
		if err != nil {
			t.Fatalf("lag column in %q: %v", line, err)
		}
		if lag != want[key] {
			t.Errorf("kafka-consumer-groups: lag of %s = %v, Runnel says %v", key, lag, want[key])
		}
		if f[4] != "10" {
			t.Errorf("kafka-consumer-groups: log end offset of %s = %s, want 10", key, f[4])
		}
		if f[8] != "jg-client" || !strings.HasPrefix(f[6], "jg-client-") {
			t.Errorf("kafka-consumer-groups: member of %s is %s (%s), want jg-client", key, f[6], f[8])
		}
		rows++
	}
	if rows != parts {
		t.Fatalf("kafka-consumer-groups listed %d partitions, want %d", rows, parts)
	}
}
