package clustertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The controller's broker stops on SIGTERM and hands the controller role
// to another voter first: the moment its process has exited, the other
// brokers already name a new controller among themselves (without the
// handover they would still name the dead one until their Raft heartbeat
// timeout ran out, and then none until an election), and a topic is
// created at once.
func TestControllerHandoverOnShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	c := startCluster(t, 3, 3)
	cl := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// Every broker agrees on the controller before it is stopped.
	var old int32 = -1
	for deadline := time.Now().Add(30 * time.Second); ; {
		ids := map[int32]bool{}
		for _, nd := range c.nodes {
			dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl.Broker(int(nd.id)))
			if err == nil {
				ids[dc.ControllerID] = true
				old = dc.ControllerID
			}
		}
		if len(ids) == 1 && old > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("brokers disagree on the controller: %v", ids)
		}
		time.Sleep(50 * time.Millisecond)
	}
	createReplicated(t, cl, "before-handover", "2")

	c.terminate(old)
	exited := time.Now()
	// At once, each remaining broker names a live controller other
	// than the one that stopped.
	for _, nd := range c.nodes {
		if nd.id == old {
			continue
		}
		dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl.Broker(int(nd.id)))
		if err != nil {
			t.Fatalf("DescribeCluster on broker %d: %v", nd.id, err)
		}
		if dc.ControllerID == old || dc.ControllerID < 0 {
			t.Fatalf("broker %d names controller %d %v after controller %d exited: it was not handed over", nd.id, dc.ControllerID, time.Since(exited), old)
		}
	}
	// A metadata change goes through without an election in between.
	// To a remaining broker: the client's cached controller is gone.
	other := int32(1)
	if old == 1 {
		other = 2
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "after-handover", 1, 2
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(other)))
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("create a topic after the handover: %v", err)
	}
	took := time.Since(exited)
	t.Logf("topic created %v after controller %d exited", took, old)
	// An election takes at least the heartbeat timeout (500ms) plus a
	// randomized election timeout; a handed-over controller answers in
	// milliseconds. The bound leaves room for a loaded machine.
	if took > 5*time.Second {
		t.Fatalf("create took %v after the controller's exit", took)
	}
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil || dc.ControllerID == old {
		t.Fatalf("controller after the handover: %+v %v", dc, err)
	}
}
