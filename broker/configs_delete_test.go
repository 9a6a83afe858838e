package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// IncrementalAlterConfigs DELETE of a name the resource does not set is a
// no-op, whatever the name, as in Kafka: kafka-reassign-partitions
// --verify deletes the replication throttle rates, and the log dirs
// throttle Runnel does not know, from every broker. A SET of an unknown
// name is still refused.
func TestIncrementalAlterConfigsDeleteUnset(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{NodeID: 2})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "du", 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{del("leader.replication.throttled.rate"), del("follower.replication.throttled.rate"), del("replica.alter.log.dirs.io.max.bytes.per.second")}, 2)
	if err != nil || rs[0].Err != nil {
		t.Fatalf("delete unset throttle rates: %v %+v", err, rs)
	}
	if err, msg := alterTopic(t, adm, "du", del("leader.replication.throttled.replicas"), del("no.such.config")); err != nil {
		t.Fatalf("delete unset topic configs: %v: %s", err, msg)
	}
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{set("replica.alter.log.dirs.io.max.bytes.per.second", "1000")}, 2)
	if err != nil || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
		t.Fatalf("set an unknown broker config: %v %+v; want INVALID_CONFIG", err, rs)
	}
	if err, _ := alterTopic(t, adm, "du", set("no.such.config", "1")); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("set an unknown topic config: %v; want INVALID_CONFIG", err)
	}
}
