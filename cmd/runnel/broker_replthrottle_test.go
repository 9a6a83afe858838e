package main

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
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
	got := describeBrokerConfigs(t, cl, "replication.quota.window.num", "replication.quota.window.size")
	if got["replication.quota.window.num"] != "3" || got["replication.quota.window.size"] != "250ms" {
		t.Fatalf("replication quota windows described as %v", got)
	}
}
