package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/freeport"
)

// `topics describe` on a cluster: an offline partition shows leader
// "none" with its replicas and ISR, and a reassignment in progress is
// listed with the replicas being added and removed. Two in-process
// brokers, the first the whole controller quorum; the second stops.
func TestTopicsDescribeCluster(t *testing.T) {
	addrs, err := freeport.Addrs(4)
	if err != nil {
		t.Fatal(err)
	}
	config := func(id int32, listen, controller string) broker.Config {
		return broker.Config{
			NodeID: id, DataDir: t.TempDir(), Listen: listen, ControllerListen: controller,
			ControllerQuorum: "1@" + addrs[2], BrokerSessionTimeout: 3 * time.Second, BrokerHeartbeatInterval: 300 * time.Millisecond,
			OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", id),
		}
	}
	var b1, b2 *broker.Broker
	startCtx, cancelStart := context.WithTimeout(testContext(t), 60*time.Second)
	defer cancelStart()
	errs := make(chan error, 2)
	go func() {
		var err error
		b1, err = broker.Start(startCtx, config(1, addrs[0], addrs[2]))
		errs <- err
	}()
	go func() {
		var err error
		b2, err = broker.Start(startCtx, config(2, addrs[1], addrs[3]))
		errs <- err
	}()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	defer b1.Close()
	defer b2.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b1.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(testContext(t), 60*time.Second)
	defer cancel()
	create := func(topic string, replicas ...int32) {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Replicas = replicas
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
		req.Topics = append(req.Topics, rt)
		if resp, err := req.RequestWith(ctx, cl); err != nil || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("create %s: %+v %v", topic, resp, err)
		}
	}
	create("moving", 1)
	create("offline", 2)
	b2.Close() // controlled shutdown: "offline" loses its only replica
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("moving", 0, []int32{2})
	if res, err := adm.AlterPartitionAssignments(ctx, req); err != nil || res["moving"][0].Err != nil {
		t.Fatalf("reassign: %+v %v", res, err)
	}

	r := mustCLI(t, b1.Addr(), "", "topics", "describe", "moving")
	if want := "Partition 0 reassigning: adding 2, removing 1"; !strings.Contains(r.stdout, want) {
		t.Fatalf("describe of a partition being reassigned:\n%s\nwant a line %q", r.stdout, want)
	}
	if row := tableRow(r.stdout, "0"); fmt.Sprint(row[:5]) != "[0 1 0 2,1 1]" {
		t.Fatalf("describe row %q, want leader 1, replicas 2,1, ISR 1", row)
	}
	r = mustCLI(t, b1.Addr(), "", "topics", "describe", "offline")
	if row := tableRow(r.stdout, "0"); fmt.Sprint(row[:5]) != "[0 none 1 2 2]" {
		t.Fatalf("describe of an offline partition: row %q, want leader none, replicas 2, ISR 2\n%s", row, r.stdout)
	}
}

// tableRow returns the fields of the describe table's row that starts
// with first.
func tableRow(out, first string) []string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 5 && f[0] == first {
			return f
		}
	}
	return make([]string, 5)
}
