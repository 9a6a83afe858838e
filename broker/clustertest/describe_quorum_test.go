package clustertest_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// describeQuorum sends DescribeQuorum for __cluster_metadata-0 to one
// broker and returns the partition's answer and the response.
func describeQuorum(ctx context.Context, cl *kgo.Client, node int32) (kmsg.DescribeQuorumResponseTopicPartition, *kmsg.DescribeQuorumResponse, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rp := kmsg.NewDescribeQuorumRequestTopicPartition()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	var r kmsg.Requestor = cl
	if node >= 0 {
		r = cl.Broker(int(node))
	}
	resp, err := req.RequestWith(ctx, r)
	if err != nil {
		return kmsg.DescribeQuorumResponseTopicPartition{}, nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return kmsg.DescribeQuorumResponseTopicPartition{}, resp, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return kmsg.DescribeQuorumResponseTopicPartition{}, resp, fmt.Errorf("DescribeQuorum answered %+v", resp.Topics)
	}
	p := resp.Topics[0].Partitions[0]
	return p, resp, kerr.ErrorForCode(p.ErrorCode)
}

// DescribeQuorum on a cluster of three voters and one broker-only node,
// asked of every broker (the non-controllers ask the controller): the
// controller leads at its Raft term, the voters are 1-3 and the observer
// 4, every member holds the log up to the high watermark and was heard
// from and caught up within the last seconds, and v2 lists each voter's
// controller listener.
func TestDescribeQuorumCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	start := time.Now()
	c := startCluster(t, 4, 3)
	cl := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A metadata change, so the followers have something to catch up on.
	createReplicated(t, cl, "quorum-probe", "2")

	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	controller := dc.ControllerID
	ids := func(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState) []int32 {
		var out []int32
		for _, r := range rs {
			out = append(out, r.ReplicaID)
		}
		return out
	}
	for _, nd := range c.nodes {
		// Every member hears from the leader every 50ms; poll until
		// each has been seen caught up, as a loaded machine may lag.
		var p kmsg.DescribeQuorumResponseTopicPartition
		var resp *kmsg.DescribeQuorumResponse
		deadline := time.Now().Add(30 * time.Second)
		for {
			p, resp, err = describeQuorum(ctx, cl, nd.id)
			if err == nil && allCaughtUp(p, start) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("DescribeQuorum to broker %d: %+v, err %v", nd.id, p, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if p.LeaderID != controller || p.LeaderEpoch < 1 || p.HighWatermark < 2 {
			t.Fatalf("DescribeQuorum to broker %d: leader %d epoch %d hw %d; controller %d", nd.id, p.LeaderID, p.LeaderEpoch, p.HighWatermark, controller)
		}
		if got := ids(p.CurrentVoters); !slices.Equal(got, []int32{1, 2, 3}) {
			t.Fatalf("voters %v, want [1 2 3]", got)
		}
		if got := ids(p.Observers); !slices.Equal(got, []int32{4}) {
			t.Fatalf("observers %v, want [4]", got)
		}
		var nodes []string
		for _, n := range resp.Nodes {
			for _, l := range n.Listeners {
				nodes = append(nodes, fmt.Sprintf("%d %s %s:%d", n.NodeID, l.Name, l.Host, l.Port))
			}
		}
		var want []string
		for _, v := range c.nodes[:3] {
			want = append(want, fmt.Sprintf("%d CONTROLLER %s", v.id, v.controller))
		}
		if !slices.Equal(nodes, want) {
			t.Fatalf("nodes %v, want %v", nodes, want)
		}
	}

	// Any other partition is unknown.
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "quorum-probe"
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("DescribeQuorum of quorum-probe-0: %+v %v; want UNKNOWN_TOPIC_OR_PARTITION", resp, err)
	}

	// A stopped voter is still a voter, and its last fetch stops moving.
	victim := int32(3)
	if controller == victim {
		victim = 2
	}
	c.kill(victim)
	for deadline := time.Now().Add(30 * time.Second); ; {
		p, _, err := describeQuorum(ctx, cl, controller)
		if err == nil && p.LeaderID == controller && len(p.CurrentVoters) == 3 {
			v := p.CurrentVoters[victim-1]
			if v.LastFetchTimestamp > 0 && time.Since(time.UnixMilli(v.LastFetchTimestamp)) > 2*time.Second {
				t.Logf("voter %d last fetched at %s", victim, time.UnixMilli(v.LastFetchTimestamp).Format(time.RFC3339Nano))
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("voter %d still fetching 30s after its kill: %+v, err %v", victim, p, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// allCaughtUp reports whether every member of the quorum holds the log
// up to the high watermark and was heard from and caught up after start.
func allCaughtUp(p kmsg.DescribeQuorumResponseTopicPartition, start time.Time) bool {
	for _, r := range append(slices.Clone(p.CurrentVoters), p.Observers...) {
		if r.LogEndOffset < p.HighWatermark || r.LastFetchTimestamp < start.UnixMilli() || r.LastCaughtUpTimestamp < start.UnixMilli() {
			return false
		}
	}
	return len(p.CurrentVoters) > 0
}

// A single broker is a quorum of one: it leads, votes alone, and has no
// controller listener to list.
func TestDescribeQuorumSingleNode(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, resp, err := describeQuorum(ctx, cl, -1)
	if err != nil {
		t.Fatal(err)
	}
	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil || len(md.Brokers) != 1 {
		t.Fatalf("metadata: %+v %v", md, err)
	}
	self := md.Brokers[0].NodeID
	if p.LeaderID != self || p.LeaderEpoch < 1 || p.HighWatermark < 1 || len(p.CurrentVoters) != 1 || p.CurrentVoters[0].ReplicaID != self ||
		p.CurrentVoters[0].LogEndOffset < p.HighWatermark || len(p.Observers) != 0 || len(resp.Nodes) != 0 {
		t.Fatalf("DescribeQuorum of a single broker: %+v nodes %+v", p, resp.Nodes)
	}
}

// Apache Kafka's kafka-metadata-quorum tool describes a three-voter
// cluster with one broker-only node: --status names the controller as
// leader, the three voters with their controller listeners and the
// observer; --replication lists each member with its role and a lag of
// at most a few entries.
func TestDescribeQuorumJavaTool(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	_, tool := kafkaHome(t)
	c := startCluster(t, 4, 3)
	cl := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	seeds := strings.Join(c.seeds(), ",")

	status := javaTool(t, ctx, tool, "", "org.apache.kafka.tools.MetadataQuorumCommand", "--bootstrap-server", seeds, "describe", "--status")
	t.Logf("describe --status:\n%s", status)
	fields := map[string]string{}
	for _, line := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if fields["ClusterId"] != dc.ClusterID {
		t.Errorf("ClusterId %q, want %q", fields["ClusterId"], dc.ClusterID)
	}
	if fields["LeaderId"] != strconv.Itoa(int(dc.ControllerID)) {
		t.Errorf("LeaderId %q, want the controller %d", fields["LeaderId"], dc.ControllerID)
	}
	if n, err := strconv.Atoi(fields["LeaderEpoch"]); err != nil || n < 1 {
		t.Errorf("LeaderEpoch %q", fields["LeaderEpoch"])
	}
	if n, err := strconv.Atoi(fields["HighWatermark"]); err != nil || n < 2 {
		t.Errorf("HighWatermark %q", fields["HighWatermark"])
	}
	for _, v := range c.nodes[:3] {
		if want := fmt.Sprintf(`"id": %d`, v.id); !strings.Contains(fields["CurrentVoters"], want) {
			t.Errorf("CurrentVoters %q lacks %s", fields["CurrentVoters"], want)
		}
		if want := "CONTROLLER://" + v.controller; !strings.Contains(fields["CurrentVoters"], want) {
			t.Errorf("CurrentVoters %q lacks %s", fields["CurrentVoters"], want)
		}
	}
	if !strings.Contains(fields["CurrentObservers"], `"id": 4`) {
		t.Errorf("CurrentObservers %q lacks node 4", fields["CurrentObservers"])
	}

	repl := javaTool(t, ctx, tool, "", "org.apache.kafka.tools.MetadataQuorumCommand", "--bootstrap-server", seeds, "describe", "--replication")
	t.Logf("describe --replication:\n%s", repl)
	// NodeId DirectoryId LogEndOffset Lag LastFetchTimestamp LastCaughtUpTimestamp Status
	row := regexp.MustCompile(`^(\d+)\s+\S+\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s+(Leader|Follower|Observer)\s*$`)
	roles := map[string]string{}
	for _, line := range strings.Split(repl, "\n")[1:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		m := row.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("--replication row %q", line)
		}
		roles[m[1]] = m[4]
		if lag, _ := strconv.Atoi(m[3]); lag > 100 {
			t.Errorf("node %s lags %d entries", m[1], lag)
		}
	}
	want := map[string]string{"1": "Follower", "2": "Follower", "3": "Follower", "4": "Observer"}
	want[strconv.Itoa(int(dc.ControllerID))] = "Leader"
	if fmt.Sprint(roles) != fmt.Sprint(want) {
		t.Errorf("--replication roles %v, want %v", roles, want)
	}
}
