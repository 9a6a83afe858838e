package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// `runnel broker --flush-messages N` reaches the broker: DescribeConfigs
// lists it, and produces are acknowledged without a group commit (the
// fsync the default makes before every acknowledgement), their records
// read back whole.
func TestBrokerFlushMessagesFlag(t *testing.T) {
	ctx := testContext(t)
	lines := brokerInProcess(t, 2, "--metrics-listen", "127.0.0.1:0", "--direct-writes-cache=67108864", "--flush-messages", "1000000")
	m, mm := listeningRE.FindStringSubmatch(lines[0]), metricsRE.FindStringSubmatch(lines[1])
	if m == nil || mm == nil {
		t.Fatalf("broker printed %q", lines)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(m[1]), kgo.DefaultProduceTopic("flushed"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"flushed": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	if got := describeBrokerConfigs(t, cl, "log.flush.interval.messages"); len(got) != 1 || got["log.flush.interval.messages"] != "1000000" {
		t.Fatalf("log.flush.interval.messages described as %v", got)
	}

	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "flushed"); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "record %d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for got := 0; got < n; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		for _, r := range fs.Records() {
			if want := fmt.Sprintf("record %d", got); string(r.Value) != want {
				t.Fatalf("record %d reads %q, want %q", got, r.Value, want)
			}
			got++
		}
	}
	const commits = "runnel_broker_log_flush_seconds_count "
	for line := range strings.Lines(checkMetrics(t, mm[1])) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), commits); ok {
			if v != "0" {
				t.Fatalf("%d acknowledged produces made %s group commits, want none", n, v)
			}
			return
		}
	}
	t.Fatalf("no %s in /metrics", strings.TrimSpace(commits))
}
