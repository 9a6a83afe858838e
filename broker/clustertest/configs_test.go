package clustertest_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describedConfig is a config as DescribeConfigs reports it.
type describedConfig struct {
	value    string
	source   kmsg.ConfigSource
	readOnly bool
}

// describeConfigs describes one resource through the broker at addr and
// fails the test on an error.
func describeConfigs(t *testing.T, addr string, typ kmsg.ConfigResourceType, name string) map[string]describedConfig {
	t.Helper()
	return describeWith(t, newClient(t, addr), typ, name)
}

// describeWith describes one resource through r: a client, or one of its
// brokers when only that broker serves the resource.
func describeWith(t *testing.T, r kmsg.Requestor, typ kmsg.ConfigResourceType, name string) map[string]describedConfig {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = typ, name
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(testContext(t), r)
	if err == nil {
		err = kerr.ErrorForCode(resp.Resources[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("describe %s %q: %v", typ, name, err)
	}
	out := make(map[string]describedConfig)
	for _, c := range resp.Resources[0].Configs {
		out[c.Name] = describedConfig{value: *c.Value, source: c.Source, readOnly: c.ReadOnly}
	}
	return out
}

func set(k, v string) kadm.AlterConfig {
	return kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v}
}

// mustAlterTopic alters one topic's configs incrementally.
func mustAlterTopic(t *testing.T, adm *kadm.Client, topic string, ops ...kadm.AlterConfig) {
	t.Helper()
	rs, err := adm.AlterTopicConfigs(testContext(t), ops, topic)
	if err == nil {
		var r kadm.AlterConfigsResponse
		if r, err = rs.On(topic, nil); err == nil && r.Err != nil {
			err = fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
		}
	}
	if err != nil {
		t.Fatalf("alter %s %v: %v", topic, ops, err)
	}
}
