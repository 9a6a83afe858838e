package broker_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// describedConfig is one config as a DescribeConfigs response gives it,
// with its synonyms as "SOURCE:name=value".
type describedConfig struct {
	value    string
	source   kmsg.ConfigSource
	readOnly bool
	synonyms []string
}

// describeConfigs describes one resource at the newest version with
// synonyms and fails the test on an error.
func describeConfigs(t *testing.T, addr string, typ kmsg.ConfigResourceType, name string) map[string]describedConfig {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms = true
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = typ, name
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(testContext(t), newClient(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	res := resp.Resources[0]
	if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
		t.Fatalf("describe %s: %v", name, err)
	}
	out := make(map[string]describedConfig)
	for _, c := range res.Configs {
		dc := describedConfig{value: *c.Value, source: c.Source, readOnly: c.ReadOnly}
		for _, s := range c.ConfigSynonyms {
			dc.synonyms = append(dc.synonyms, fmt.Sprintf("%s:%s=%s", s.Source, s.Name, *s.Value))
		}
		out[c.Name] = dc
	}
	return out
}

func (c describedConfig) String() string {
	return fmt.Sprintf("%s (%s) synonyms {%s}", c.value, c.source, strings.Join(c.synonyms, ", "))
}

// checkConfig fails unless the config has the value, source and synonyms.
func checkConfig(t *testing.T, cs map[string]describedConfig, name, value string, source kmsg.ConfigSource, synonyms ...string) {
	t.Helper()
	c, ok := cs[name]
	if !ok {
		t.Errorf("%s not described", name)
		return
	}
	if c.value != value || c.source != source || strings.Join(c.synonyms, ", ") != strings.Join(synonyms, ", ") {
		t.Errorf("%s = %v\nwant %s (%s) synonyms {%s}", name, c, value, source, strings.Join(synonyms, ", "))
	}
}

// alterTopic alters one topic incrementally and returns the resource's
// error and message.
func alterTopic(t *testing.T, adm *kadm.Client, topic string, ops ...kadm.AlterConfig) (error, string) {
	t.Helper()
	rs, err := adm.AlterTopicConfigs(testContext(t), ops, topic)
	if err != nil {
		t.Fatalf("alter %s: %v", topic, err)
	}
	r, err := rs.On(topic, nil)
	if err != nil {
		t.Fatalf("alter %s: %v", topic, err)
	}
	return r.Err, r.ErrMessage
}

func mustAlterTopic(t *testing.T, adm *kadm.Client, topic string, ops ...kadm.AlterConfig) {
	t.Helper()
	if err, msg := alterTopic(t, adm, topic, ops...); err != nil {
		t.Fatalf("alter %s %v: %v: %s", topic, ops, err, msg)
	}
}

func set(k, v string) kadm.AlterConfig {
	return kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v}
}
func del(k string) kadm.AlterConfig { return kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k} }
func appendConfig(k, v string) kadm.AlterConfig {
	return kadm.AlterConfig{Op: kadm.AppendConfig, Name: k, Value: &v}
}
func subtractConfig(k, v string) kadm.AlterConfig {
	return kadm.AlterConfig{Op: kadm.SubtractConfig, Name: k, Value: &v}
}

// Topic configs are described with the value in force, its source and
// Kafka's synonyms, under the broker names for the broker-level ones.
func TestDescribeConfigsSourcesAndSynonyms(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{SegmentBytes: 1 << 20})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "described", 1, map[string]*string{"retention.ms": ptr("12345")})

	cs := describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeTopic, "described")
	checkConfig(t, cs, "retention.ms", "12345", kmsg.ConfigSourceDynamicTopicConfig,
		"DYNAMIC_TOPIC_CONFIG:retention.ms=12345", "DEFAULT_CONFIG:log.retention.ms=604800000")
	checkConfig(t, cs, "segment.bytes", "1048576", kmsg.ConfigSourceStaticBrokerConfig,
		"STATIC_BROKER_CONFIG:log.segment.bytes=1048576", "DEFAULT_CONFIG:log.segment.bytes=1073741824")
	checkConfig(t, cs, "cleanup.policy", "delete", kmsg.ConfigSourceDefaultConfig,
		"DEFAULT_CONFIG:log.cleanup.policy=delete")
	checkConfig(t, cs, "min.cleanable.dirty.ratio", "0.5", kmsg.ConfigSourceDefaultConfig,
		"DEFAULT_CONFIG:log.cleaner.min.cleanable.ratio=0.5")
	// No broker config gives the throttled replica lists a default.
	checkConfig(t, cs, "leader.replication.throttled.replicas", "", kmsg.ConfigSourceDefaultConfig)
	for _, name := range issueConfigs {
		if c, ok := cs[name]; !ok || c.readOnly {
			t.Errorf("%s: %v, described %t; want described and not read-only", name, c, ok)
		}
	}

	// v0 has no sources: IsDefault says whether the value is Kafka's.
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 0
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "described"
	rr.ConfigNames = []string{"retention.ms", "cleanup.policy", "no.such.config"}
	req.Resources = append(req.Resources, rr)
	v0 := kversion.Stable()
	v0.SetMaxKeyVersion(32, 0)
	resp, err := req.RequestWith(testContext(t), newClient(t, b.Addr(), kgo.MaxVersions(v0)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range resp.Resources[0].Configs {
		got[c.Name] = c.IsDefault
	}
	if len(got) != 2 || got["retention.ms"] || !got["cleanup.policy"] {
		t.Errorf("v0 with config names: %v; want retention.ms not default and cleanup.policy default", got)
	}
}

// issueConfigs are the topic configs issue 5 names.
var issueConfigs = []string{
	"cleanup.policy", "retention.ms", "retention.bytes", "segment.bytes", "segment.ms",
	"max.message.bytes", "delete.retention.ms", "min.compaction.lag.ms", "max.compaction.lag.ms",
	"min.cleanable.dirty.ratio", "message.timestamp.type", "flush.messages", "flush.ms",
	"min.insync.replicas", "unclean.leader.election.enable",
}

// Every config of the issue takes a good value and refuses bad ones with
// INVALID_CONFIG and the reason, leaving the topic as it was.
func TestIncrementalAlterConfigsValidation(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "v", 1, nil)
	for _, tc := range []struct {
		name string
		good string
		bad  []string
	}{
		{"cleanup.policy", "compact,delete", []string{"shred", "delete,shred", ""}},
		{"retention.ms", "-1", []string{"-2", "soon", "1.5"}},
		{"retention.bytes", "1048576", []string{"-2", "lots"}},
		{"segment.bytes", "1048576", []string{"13", "3000000000", "big"}},
		{"segment.ms", "60000", []string{"0", "-1"}},
		{"max.message.bytes", "2000000", []string{"-1", "3000000000"}},
		{"delete.retention.ms", "1000", []string{"-1", "x"}},
		{"min.compaction.lag.ms", "5000", []string{"-1"}},
		{"max.compaction.lag.ms", "86400000", []string{"0"}},
		{"min.cleanable.dirty.ratio", "0.25", []string{"1.5", "-0.1", "half"}},
		{"message.timestamp.type", "LogAppendTime", []string{"WallTime", "createtime"}},
		{"flush.messages", "100", []string{"0"}},
		{"flush.ms", "1000", []string{"-1"}},
		{"min.insync.replicas", "1", []string{"0"}},
		{"unclean.leader.election.enable", "true", []string{"yes", "1"}},
	} {
		for _, v := range tc.bad {
			err, msg := alterTopic(t, adm, "v", set(tc.name, v))
			if !errors.Is(err, kerr.InvalidConfig) || !strings.Contains(msg, tc.name) {
				t.Errorf("%s=%q: %v %q; want INVALID_CONFIG naming the config", tc.name, v, err, msg)
			}
		}
		mustAlterTopic(t, adm, "v", set(tc.name, tc.good))
	}
	cs := describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeTopic, "v")
	if c := cs["min.cleanable.dirty.ratio"]; c.value != "0.25" || c.source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("after the good values: min.cleanable.dirty.ratio %v", c)
	}

	// Across configs, as Kafka checks them.
	err, msg := alterTopic(t, adm, "v", set("max.compaction.lag.ms", "1000"))
	if !errors.Is(err, kerr.InvalidConfig) || !strings.Contains(msg, "min.compaction.lag.ms (5000) > max.compaction.lag.ms (1000)") {
		t.Errorf("min.compaction.lag.ms above max: %v %q", err, msg)
	}
	mustAlterTopic(t, adm, "v", set("max.compaction.lag.ms", "1000"), set("min.compaction.lag.ms", "500"))

	for _, tc := range []struct {
		what string
		ops  []kadm.AlterConfig
		want error
		msg  string
	}{
		{"unknown name", []kadm.AlterConfig{set("retention.weeks", "1")}, kerr.InvalidConfig, "unknown topic config name: retention.weeks"},
		{"append to a non-list", []kadm.AlterConfig{appendConfig("retention.ms", "1")}, kerr.InvalidConfig, "append is not allowed"},
		{"null set", []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms"}}, kerr.InvalidConfig, "null value"},
		{"duplicate keys", []kadm.AlterConfig{set("retention.ms", "1"), del("retention.ms")}, kerr.InvalidRequest, "duplicate"},
	} {
		err, msg := alterTopic(t, adm, "v", tc.ops...)
		if !errors.Is(err, tc.want) || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %v %q; want %v with %q", tc.what, err, msg, tc.want, tc.msg)
		}
	}
	if err, _ := alterTopic(t, adm, "nosuch", set("retention.ms", "1")); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("altering a missing topic: %v", err)
	}

	// A bad config at create time is refused for the same reasons.
	resp, err := adm.CreateTopic(testContext(t), 1, 1, map[string]*string{"min.compaction.lag.ms": ptr("10"), "max.compaction.lag.ms": ptr("5")}, "conflicting")
	if err == nil {
		err = resp.Err
	}
	if !errors.Is(err, kerr.InvalidConfig) {
		t.Errorf("create with min.compaction.lag.ms > max: %v", err)
	}
}

// SET, DELETE, APPEND and SUBTRACT round trip, ValidateOnly changes
// nothing, and AlterConfigs replaces the whole set.
func TestAlterConfigsRoundTrip(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "rt", 1, map[string]*string{"segment.ms": ptr("60000")})

	mustAlterTopic(t, adm, "rt", set("retention.ms", "3600000"), appendConfig("cleanup.policy", "compact"), del("segment.ms"))
	cs := describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeTopic, "rt")
	checkConfig(t, cs, "retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig,
		"DYNAMIC_TOPIC_CONFIG:retention.ms=3600000", "DEFAULT_CONFIG:log.retention.ms=604800000")
	// APPEND starts from the value in force, Kafka's default "delete".
	checkConfig(t, cs, "cleanup.policy", "delete,compact", kmsg.ConfigSourceDynamicTopicConfig,
		"DYNAMIC_TOPIC_CONFIG:cleanup.policy=delete,compact", "DEFAULT_CONFIG:log.cleanup.policy=delete")
	checkConfig(t, cs, "segment.ms", "604800000", kmsg.ConfigSourceDefaultConfig, "DEFAULT_CONFIG:log.roll.ms=604800000")

	mustAlterTopic(t, adm, "rt", subtractConfig("cleanup.policy", "delete"))
	cs = describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeTopic, "rt")
	if c := cs["cleanup.policy"]; c.value != "compact" {
		t.Errorf("after SUBTRACT delete: cleanup.policy %v", c)
	}
	if err, msg := alterTopic(t, adm, "rt", subtractConfig("cleanup.policy", "compact")); !errors.Is(err, kerr.InvalidConfig) {
		t.Errorf("subtracting the last cleanup policy: %v %q; want INVALID_CONFIG", err, msg)
	}

	rs, err := adm.ValidateAlterTopicConfigs(testContext(t), []kadm.AlterConfig{set("retention.ms", "1")}, "rt")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("validate only: %v %v", err, rs)
	}
	if c := describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeTopic, "rt")["retention.ms"]; c.value != "3600000" {
		t.Errorf("ValidateOnly changed retention.ms to %v", c)
	}
	rs, err = adm.ValidateAlterTopicConfigs(testContext(t), []kadm.AlterConfig{set("retention.ms", "x")}, "rt")
	if err != nil || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
		t.Errorf("validate only with a bad value: %v %v", err, rs)
	}

	// AlterConfigs (legacy) replaces everything the topic set.
	rs, err = adm.AlterTopicConfigsState(testContext(t), []kadm.AlterConfig{set("segment.bytes", "1048576")}, "rt")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter configs: %v %v", err, rs)
	}
	var own []string
	for name, c := range describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeTopic, "rt") {
		if c.source == kmsg.ConfigSourceDynamicTopicConfig {
			own = append(own, name+"="+c.value)
		}
	}
	if strings.Join(own, ",") != "segment.bytes=1048576" {
		t.Errorf("after AlterConfigs the topic sets %v, want only segment.bytes=1048576", own)
	}
	rs, err = adm.AlterTopicConfigsState(testContext(t), []kadm.AlterConfig{set("segment.bytes", "1")}, "rt")
	if err != nil || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
		t.Errorf("AlterConfigs with a bad value: %v %v", err, rs)
	}
}

// Dynamic broker configs: the cluster default and this broker's own, by
// their broker names, under a topic's own and over the static config.
func TestAlterBrokerConfigs(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{NodeID: 2})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "bt", 1, nil)
	ctx := testContext(t)

	rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{set("log.retention.ms", "1000"), set("log.cleanup.policy", "compact")})
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter the cluster default: %v %+v", err, rs)
	}
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{set("log.retention.ms", "2000")}, 2)
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter broker 2: %v %+v", err, rs)
	}
	cs := describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeTopic, "bt")
	checkConfig(t, cs, "retention.ms", "2000", kmsg.ConfigSourceDynamicBrokerConfig,
		"DYNAMIC_BROKER_CONFIG:log.retention.ms=2000", "DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=1000", "DEFAULT_CONFIG:log.retention.ms=604800000")
	checkConfig(t, cs, "cleanup.policy", "compact", kmsg.ConfigSourceDynamicDefaultBrokerConfig,
		"DYNAMIC_DEFAULT_BROKER_CONFIG:log.cleanup.policy=compact", "DEFAULT_CONFIG:log.cleanup.policy=delete")

	bc := describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeBroker, "2")
	checkConfig(t, bc, "log.retention.ms", "2000", kmsg.ConfigSourceDynamicBrokerConfig,
		"DYNAMIC_BROKER_CONFIG:log.retention.ms=2000", "DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=1000", "DEFAULT_CONFIG:log.retention.ms=604800000")
	if c := bc["num.partitions"]; c.value != "1" || !c.readOnly || c.source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Errorf("num.partitions: %v read-only %t", c, c.readOnly)
	}
	if c := bc["log.segment.bytes"]; c.readOnly || c.source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("log.segment.bytes: %v read-only %t", c, c.readOnly)
	}
	dc := describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeBroker, "")
	if len(dc) != 2 || dc["log.retention.ms"].value != "1000" || dc["log.retention.ms"].source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Errorf("cluster default: %v", dc)
	}

	// A topic's own value wins over every broker layer.
	mustAlterTopic(t, adm, "bt", set("retention.ms", "3000"))
	if c := describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeTopic, "bt")["retention.ms"]; c.value != "3000" || len(c.synonyms) != 4 {
		t.Errorf("topic over broker configs: %v", c)
	}

	for _, tc := range []struct {
		what    string
		configs []kadm.AlterConfig
		brokers []int32
		want    error
	}{
		{"static config", []kadm.AlterConfig{set("num.partitions", "3")}, nil, kerr.InvalidConfig},
		{"bad value", []kadm.AlterConfig{set("log.segment.bytes", "tiny")}, []int32{2}, kerr.InvalidConfig},
		{"topic name", []kadm.AlterConfig{set("retention.ms", "1")}, nil, kerr.InvalidConfig},
		{"min above max", []kadm.AlterConfig{set("log.cleaner.min.compaction.lag.ms", "10"), set("log.cleaner.max.compaction.lag.ms", "5")}, nil, kerr.InvalidConfig},
	} {
		rs, err := adm.AlterBrokerConfigs(ctx, tc.configs, tc.brokers...)
		if err != nil || len(rs) != 1 || !errors.Is(rs[0].Err, tc.want) {
			t.Errorf("%s: %v %+v; want %v", tc.what, err, rs, tc.want)
		}
	}

	// Another broker's resource is not served here.
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "7"
	req.Resources = append(req.Resources, rr)
	raw, err := newClient(t, b.Addr()).Broker(2).Request(ctx, req)
	resp, _ := raw.(*kmsg.IncrementalAlterConfigsResponse)
	if err != nil || resp == nil || kerr.ErrorForCode(resp.Resources[0].ErrorCode) != kerr.InvalidRequest {
		t.Errorf("altering broker 7 on broker 2: %v %+v", err, resp)
	}

	// DELETE goes back to the layer below.
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{del("log.retention.ms")}, 2)
	if err != nil || rs[0].Err != nil {
		t.Fatalf("delete broker 2's config: %v %+v", err, rs)
	}
	bc = describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeBroker, "2")
	checkConfig(t, bc, "log.retention.ms", "1000", kmsg.ConfigSourceDynamicDefaultBrokerConfig,
		"DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=1000", "DEFAULT_CONFIG:log.retention.ms=604800000")
}

// Topic and broker configs are Raft metadata: a restarted broker has them.
func TestConfigsPersistAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b := testutil.StartBroker(t, broker.Config{DataDir: dir})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "kept", 1, nil)
	mustAlterTopic(t, adm, "kept", set("retention.ms", "3600000"), set("cleanup.policy", "compact,delete"))
	if rs, err := adm.AlterBrokerConfigs(testContext(t), []kadm.AlterConfig{set("log.segment.bytes", "1048576")}); err != nil || rs[0].Err != nil {
		t.Fatalf("alter broker default: %v %+v", err, rs)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = testutil.StartBroker(t, broker.Config{DataDir: dir})
	cs := describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeTopic, "kept")
	checkConfig(t, cs, "retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig,
		"DYNAMIC_TOPIC_CONFIG:retention.ms=3600000", "DEFAULT_CONFIG:log.retention.ms=604800000")
	checkConfig(t, cs, "cleanup.policy", "compact,delete", kmsg.ConfigSourceDynamicTopicConfig,
		"DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete", "DEFAULT_CONFIG:log.cleanup.policy=delete")
	checkConfig(t, cs, "segment.bytes", "1048576", kmsg.ConfigSourceDynamicDefaultBrokerConfig,
		"DYNAMIC_DEFAULT_BROKER_CONFIG:log.segment.bytes=1048576", "DEFAULT_CONFIG:log.segment.bytes=1073741824")
}

// Lowering segment.bytes and retention.bytes on a live topic changes how
// its log rolls and what retention keeps, without a restart; so does a
// dynamic broker default.
func TestConfigChangesTakeEffectWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	b := testutil.StartBroker(t, broker.Config{DataDir: dir})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "live", 1, nil)
	createTopic(t, adm, "other", 1, nil)
	// Uncompressed, so each record takes its 200-odd bytes in the log.
	cl := newClient(t, b.Addr(), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produce := func(topic string, n int) {
		t.Helper()
		for i := range n {
			r := &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("%04d %s", i, strings.Repeat("x", 200)))}
			if err := cl.ProduceSync(testContext(t), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	segments := func(topic string) int {
		t.Helper()
		logs, err := filepath.Glob(filepath.Join(dir, "logs", topic+"-0", "*.log"))
		if err != nil {
			t.Fatal(err)
		}
		return len(logs)
	}
	startOffset := func(topic string) int64 {
		t.Helper()
		lo, err := adm.ListStartOffsets(testContext(t), topic)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := lo.Lookup(topic, 0)
		return o.Offset
	}

	produce("live", 10)
	if n := segments("live"); n != 1 {
		t.Fatalf("%d segments before the change, want 1", n)
	}
	mustAlterTopic(t, adm, "live", set("segment.bytes", "1024"))
	produce("live", 20)
	if n := segments("live"); n < 4 {
		t.Fatalf("%d segments after lowering segment.bytes to 1024 and writing 5 KiB, want at least 4", n)
	}
	b.EnforceRetention()
	if s := startOffset("live"); s != 0 {
		t.Fatalf("start offset %d before retention.bytes is lowered", s)
	}
	mustAlterTopic(t, adm, "live", set("retention.bytes", "2048"))
	b.EnforceRetention()
	if s := startOffset("live"); s < 15 {
		t.Fatalf("start offset %d after retention.bytes=2048, want the log cut to its newest 2 KiB", s)
	}
	if n := segments("live"); n > 4 {
		t.Fatalf("%d segments left after retention.bytes=2048", n)
	}

	// The same through a dynamic broker default, for a topic that sets
	// nothing itself.
	if rs, err := adm.AlterBrokerConfigs(testContext(t), []kadm.AlterConfig{set("log.segment.bytes", "1024")}); err != nil || rs[0].Err != nil {
		t.Fatalf("alter broker default: %v %+v", err, rs)
	}
	produce("other", 20)
	if n := segments("other"); n < 4 {
		t.Fatalf("%d segments after log.segment.bytes=1024, want at least 4", n)
	}
}
