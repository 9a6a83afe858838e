package broker_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestKafkaConfigCommand runs Apache Kafka's kafka-configs tool
// (kafka.admin.ConfigCommand) against the broker: it alters a topic's
// configs (adding and deleting in one go, through
// IncrementalAlterConfigs), describes them with their synonyms, and sets a
// cluster-wide broker default. Three JVM launches.
func TestKafkaConfigCommand(t *testing.T) {
	_, tool := kafkaHome(t)
	b := testutil.StartBroker(t, broker.Config{})
	addr := b.Addr()
	ctx := testContext(t)
	const topic = "java-configs"
	createTopic(t, newAdmin(t, addr), topic, 1, map[string]*string{"segment.ms": ptr("60000")})
	const cc = "kafka.admin.ConfigCommand"

	out := javaTool(t, ctx, tool, "", cc, "--bootstrap-server", addr, "--entity-type", "topics", "--entity-name", topic,
		"--alter", "--add-config", "retention.ms=3600000,cleanup.policy=[compact,delete]", "--delete-config", "segment.ms")
	if !strings.Contains(out, "Completed updating config for topic "+topic) {
		t.Errorf("ConfigCommand --alter printed:\n%s", out)
	}
	cs := describeConfigs(t, addr, kmsg.ConfigResourceTypeTopic, topic)
	checkConfig(t, cs, "cleanup.policy", "compact,delete", kmsg.ConfigSourceDynamicTopicConfig,
		"DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete", "DEFAULT_CONFIG:log.cleanup.policy=delete")
	checkConfig(t, cs, "segment.ms", "604800000", kmsg.ConfigSourceDefaultConfig, "DEFAULT_CONFIG:log.roll.ms=604800000")

	out = javaTool(t, ctx, tool, "", cc, "--bootstrap-server", addr, "--entity-type", "topics", "--entity-name", topic, "--describe")
	for _, re := range []string{
		`(?m)^Dynamic configs for topic java-configs are:$`,
		`(?m)^  cleanup\.policy=compact,delete sensitive=false synonyms=\{DYNAMIC_TOPIC_CONFIG:cleanup\.policy=compact,delete, DEFAULT_CONFIG:log\.cleanup\.policy=delete\}$`,
		`(?m)^  retention\.ms=3600000 sensitive=false synonyms=\{DYNAMIC_TOPIC_CONFIG:retention\.ms=3600000, DEFAULT_CONFIG:log\.retention\.ms=604800000\}$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("ConfigCommand --describe output does not match %s:\n%s", re, out)
		}
	}
	if strings.Contains(out, "segment.ms") {
		t.Errorf("ConfigCommand --describe still shows the deleted segment.ms:\n%s", out)
	}

	out = javaTool(t, ctx, tool, "", cc, "--bootstrap-server", addr, "--entity-type", "brokers", "--entity-default",
		"--alter", "--add-config", "log.retention.bytes=1073741824")
	if !strings.Contains(out, "Completed updating default config for brokers in the cluster") {
		t.Errorf("ConfigCommand --alter --entity-default printed:\n%s", out)
	}
	checkConfig(t, describeConfigs(t, addr, kmsg.ConfigResourceTypeTopic, topic), "retention.bytes", "1073741824",
		kmsg.ConfigSourceDynamicDefaultBrokerConfig,
		"DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.bytes=1073741824", "DEFAULT_CONFIG:log.retention.bytes=-1")
}
