package main

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// `runnel broker --replication-quota-window-num/-size` reach the broker:
// DescribeConfigs lists the windows in force among its static configs.
func TestBrokerReplicationQuotaFlags(t *testing.T) {
	lines := brokerInProcess(t, 1, "--replication-quota-window-num", "3", "--replication-quota-window-size", "250ms")
	m := listeningRE.FindStringSubmatch(lines[0])
	if m == nil {
		t.Fatalf("broker printed %q", lines)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
	rr.ConfigNames = []string{"replication.quota.window.num", "replication.quota.window.size"}
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(testContext(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range resp.Resources[0].Configs {
		got[c.Name] = *c.Value
	}
	if got["replication.quota.window.num"] != "3" || got["replication.quota.window.size"] != "250ms" {
		t.Fatalf("replication quota windows described as %v", got)
	}
}
