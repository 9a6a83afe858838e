package main

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// `runnel broker --replication-quota-window-num/-size` reach the broker:
// DescribeConfigs lists the windows in force among its static configs.
func TestBrokerReplicationQuotaFlags(t *testing.T) {
	ctx, stop := context.WithCancel(testContext(t))
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"broker", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--log-level", "warn",
			"--replication-quota-window-num", "3", "--replication-quota-window-size", "250ms"},
			env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	defer func() { stop(); <-done }()
	if !stdout.waitFor(testContext(t), func(s string) bool { return strings.Count(s, "\n") == 1 }) {
		t.Fatalf("broker printed %q; stderr %q", stdout.String(), stderr.String())
	}
	m := listeningRE.FindStringSubmatch(strings.TrimSpace(stdout.String()))
	if m == nil {
		t.Fatalf("broker printed %q", stdout.String())
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
