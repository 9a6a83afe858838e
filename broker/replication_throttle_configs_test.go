package broker_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// The configs kafka-reassign-partitions --throttle sets (the throttles at
// work on a cluster are tested in broker/clustertest).

const (
	leaderRate       = "leader.replication.throttled.rate"
	followerRate     = "follower.replication.throttled.rate"
	leaderReplicas   = "leader.replication.throttled.replicas"
	followerReplicas = "follower.replication.throttled.replicas"
	noThrottle       = "9223372036854775807"
)

// The throttle rates are dynamic broker configs, per broker and as the
// cluster default, described with their sources and type; the replica
// lists are topic configs in Kafka's syntax. Bad values are INVALID_CONFIG
// with the reason, and DELETE goes back to the layer below.
func TestReplicationThrottleConfigs(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{NodeID: 2})
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	alterBroker := func(what string, configs []kadm.AlterConfig, brokers ...int32) {
		t.Helper()
		rs, err := adm.AlterBrokerConfigs(ctx, configs, brokers...)
		if err == nil {
			err = rs[0].Err
		}
		if err != nil {
			t.Fatalf("%s: %v %+v", what, err, rs)
		}
	}
	alterBroker("set broker 2's rates", []kadm.AlterConfig{set(leaderRate, "1000000"), set(followerRate, "2000000")}, 2)
	alterBroker("set the default leader rate", []kadm.AlterConfig{set(leaderRate, "500")})

	bc := describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeBroker, "2")
	checkConfig(t, bc, leaderRate, "1000000", kmsg.ConfigSourceDynamicBrokerConfig,
		"DYNAMIC_BROKER_CONFIG:"+leaderRate+"=1000000", "DYNAMIC_DEFAULT_BROKER_CONFIG:"+leaderRate+"=500", "DEFAULT_CONFIG:"+leaderRate+"="+noThrottle)
	checkConfig(t, bc, followerRate, "2000000", kmsg.ConfigSourceDynamicBrokerConfig,
		"DYNAMIC_BROKER_CONFIG:"+followerRate+"=2000000", "DEFAULT_CONFIG:"+followerRate+"="+noThrottle)
	if c := bc[leaderRate]; c.readOnly {
		t.Errorf("%s read-only", leaderRate)
	}
	dc := describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeBroker, "")
	checkConfig(t, dc, leaderRate, "500", kmsg.ConfigSourceDynamicDefaultBrokerConfig, "DYNAMIC_DEFAULT_BROKER_CONFIG:"+leaderRate+"=500")

	// Described by name, as a LONG.
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeBroker, "2", []string{followerRate}
	req.Resources = append(req.Resources, rr)
	req.IncludeDocumentation = true
	resp, err := req.RequestWith(ctx, newClient(t, b.Addr()))
	if err != nil || len(resp.Resources) != 1 || len(resp.Resources[0].Configs) != 1 {
		t.Fatalf("describe %s by name: %v %+v", followerRate, err, resp)
	}
	if c := resp.Resources[0].Configs[0]; c.Name != followerRate || *c.Value != "2000000" || c.ConfigType != kmsg.ConfigTypeLong {
		t.Errorf("%s described as %s=%v type %v", followerRate, c.Name, *c.Value, c.ConfigType)
	}

	for _, v := range []string{"-1", "fast", "", "1.5", "9223372036854775808"} {
		rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{set(leaderRate, v)}, 2)
		if err != nil || !errors.Is(rs[0].Err, kerr.InvalidConfig) || !strings.Contains(rs[0].ErrMessage, leaderRate) {
			t.Errorf("rate %q: %v %+v; want INVALID_CONFIG naming the config", v, err, rs)
		}
	}
	// AlterConfigs (the legacy API) replaces the broker's configs as a
	// whole: the leader rate set above goes.
	rs, err := adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{set(followerRate, "3000000")}, 2)
	if err != nil || rs[0].Err != nil {
		t.Fatalf("legacy alter: %v %+v", err, rs)
	}
	bc = describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeBroker, "2")
	checkConfig(t, bc, followerRate, "3000000", kmsg.ConfigSourceDynamicBrokerConfig,
		"DYNAMIC_BROKER_CONFIG:"+followerRate+"=3000000", "DEFAULT_CONFIG:"+followerRate+"="+noThrottle)
	checkConfig(t, bc, leaderRate, "500", kmsg.ConfigSourceDynamicDefaultBrokerConfig,
		"DYNAMIC_DEFAULT_BROKER_CONFIG:"+leaderRate+"=500", "DEFAULT_CONFIG:"+leaderRate+"="+noThrottle)

	// The replica lists.
	createTopic(t, adm, "tt", 2, nil)
	mustAlterTopic(t, adm, "tt", set(leaderReplicas, "0:2, 1:2"), set(followerReplicas, "*"))
	mustAlterTopic(t, adm, "tt", appendConfig(leaderReplicas, "1:3"))
	cs := describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeTopic, "tt")
	checkConfig(t, cs, leaderReplicas, "0:2,1:2,1:3", kmsg.ConfigSourceDynamicTopicConfig, "DYNAMIC_TOPIC_CONFIG:"+leaderReplicas+"=0:2,1:2,1:3")
	checkConfig(t, cs, followerReplicas, "*", kmsg.ConfigSourceDynamicTopicConfig, "DYNAMIC_TOPIC_CONFIG:"+followerReplicas+"=*")
	for _, v := range []string{"0-2", "0:two", "-1:2", "*,0:1", "0:1:2"} {
		err, msg := alterTopic(t, adm, "tt", set(followerReplicas, v))
		if !errors.Is(err, kerr.InvalidConfig) || !strings.Contains(msg, "[partitionId]:[brokerId]") {
			t.Errorf("list %q: %v %q; want INVALID_CONFIG with the format", v, err, msg)
		}
	}
	if err, msg := alterTopic(t, adm, "tt", appendConfig(leaderReplicas, "x")); !errors.Is(err, kerr.InvalidConfig) {
		t.Errorf("append a bad item: %v %q; want INVALID_CONFIG", err, msg)
	}
	cr, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{leaderReplicas: ptr("0:1,oops")}, "bad-list")
	if !errors.Is(err, kerr.InvalidConfig) && !errors.Is(cr.Err, kerr.InvalidConfig) {
		t.Errorf("create with a bad list: %v %+v; want INVALID_CONFIG", err, cr)
	}

	// DELETE, as kafka-reassign-partitions --verify does it.
	alterBroker("delete broker 2's rates", []kadm.AlterConfig{del(leaderRate), del(followerRate), del("replica.alter.log.dirs.io.max.bytes.per.second")}, 2)
	alterBroker("delete the default rate", []kadm.AlterConfig{del(leaderRate), del(followerRate)})
	mustAlterTopic(t, adm, "tt", del(leaderReplicas), del(followerReplicas))
	bc = describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeBroker, "2")
	checkConfig(t, bc, leaderRate, noThrottle, kmsg.ConfigSourceDefaultConfig, "DEFAULT_CONFIG:"+leaderRate+"="+noThrottle)
	checkConfig(t, bc, followerRate, noThrottle, kmsg.ConfigSourceDefaultConfig, "DEFAULT_CONFIG:"+followerRate+"="+noThrottle)
	if dc := describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeBroker, ""); len(dc) != 0 {
		t.Errorf("cluster defaults left: %v", dc)
	}
	cs = describeConfigs(t, b.Addr(), kmsg.ConfigResourceTypeTopic, "tt")
	checkConfig(t, cs, leaderReplicas, "", kmsg.ConfigSourceDefaultConfig)
	checkConfig(t, cs, followerReplicas, "", kmsg.ConfigSourceDefaultConfig)
}
