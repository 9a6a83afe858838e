package clustertest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/broker/internal/log"
	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
	"github.com/runnel-dev/runnel/internal/freeport"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Multi-broker tests: three brokers, each a separate process (the test
// binary re-executed, see TestMain), in a cluster over TCP, driven by
// franz-go. Timeouts are short so failures are detected in seconds; the
// tests poll with deadlines, never sleep to wait.

// Environment of a cluster child (added to the plain child's).
const (
	clusterNodeEnv    = childEnv + "_NODE"
	clusterQuorumEnv  = childEnv + "_QUORUM"
	clusterControlEnv = childEnv + "_CONTROLLER"
)

// Cluster timing for tests (internal/testutil's): a silent broker is fenced after
// testSessionTimeout, a follower that stops fetching leaves the ISR after
// testReplicaLag.
const (
	testSessionTimeout = testutil.SessionTimeout
	testHeartbeat      = testutil.Heartbeat
	testReplicaLag     = testutil.ReplicaLag
)

// clusterChildConfig makes a child broker a cluster node when the test
// says so.
func clusterChildConfig(cfg *broker.Config) {
	node := os.Getenv(clusterNodeEnv)
	if node == "" {
		return
	}
	id, _ := strconv.Atoi(node)
	cfg.NodeID = int32(id)
	cfg.ControllerQuorum = os.Getenv(clusterQuorumEnv)
	cfg.ControllerListen = os.Getenv(clusterControlEnv)
	cfg.OffsetsTopicPartitions = 3
	cfg.TransactionStateTopicPartitions = 3
	cfg.GroupInitialRebalanceDelay = 20 * time.Millisecond
	cfg.BrokerSessionTimeout = testSessionTimeout
	cfg.BrokerHeartbeatInterval = testHeartbeat
	cfg.ReplicaLagTimeMax = testReplicaLag
	opsChildConfig(cfg) // replication_ops_test.go
	// Warnings and errors go to the test's output (shown when it fails);
	// RUNNEL_CLUSTER_LOG=info or debug shows more, to chase a failure.
	level := slog.LevelWarn
	if l := os.Getenv("RUNNEL_CLUSTER_LOG"); l != "" {
		if err := level.UnmarshalText([]byte(l)); err != nil {
			panic(fmt.Sprintf("RUNNEL_CLUSTER_LOG: %v", err))
		}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", id)
}

// clusterClientLogger logs a test client's doings to stderr when
// RUNNEL_CLUSTER_LOG is set (as the brokers do then), and nothing otherwise.
func clusterClientLogger() kgo.Opt {
	if os.Getenv("RUNNEL_CLUSTER_LOG") == "" {
		return kgo.WithLogger(nil)
	}
	return kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, func() string { return "client " }))
}

// clusterNode is one broker process of a test cluster.
type clusterNode struct {
	id         int32
	dir        string
	listen     string // Kafka listener, fixed across restarts
	controller string

	mu   sync.Mutex // guards cmd and done
	cmd  *exec.Cmd
	done chan struct{}
}

type testCluster struct {
	t      *testing.T
	nodes  []*clusterNode
	quorum string
}

func reservePorts(t *testing.T, n int) []string {
	t.Helper()
	out, err := freeport.Addrs(n)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// startCluster starts n brokers, the first voters of them also voters of
// the controller quorum and the rest broker-only, and waits until each is
// serving.
func startCluster(t *testing.T, n, voters int) *testCluster {
	t.Helper()
	ports := reservePorts(t, 2*n)
	c := &testCluster{t: t}
	var q []string
	for i := range n {
		nd := &clusterNode{id: int32(i + 1), dir: filepath.Join(t.TempDir(), "data"), listen: ports[2*i], controller: ports[2*i+1]}
		c.nodes = append(c.nodes, nd)
		if i < voters {
			q = append(q, fmt.Sprintf("%d@%s", nd.id, nd.controller))
		}
	}
	c.quorum = strings.Join(q, ",")
	// Every node waits at start for a majority and for the others to
	// register (internal topics get RF 3), so they start together.
	errs := make(chan error, n)
	for _, nd := range c.nodes {
		go func() { errs <- c.spawn(nd) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(c.stopAll)
	return c
}

// spawn starts a node's process and waits until it serves.
func (c *testCluster) spawn(nd *clusterNode) error {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"="+nd.dir, childEnv+"_LISTEN="+nd.listen,
		clusterNodeEnv+"="+strconv.Itoa(int(nd.id)), clusterQuorumEnv+"="+c.quorum, clusterControlEnv+"="+nd.controller)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	ready := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ADDR ") {
				ready <- struct{}{}
			}
		}
		cmd.Wait()
		close(done)
	}()
	nd.mu.Lock()
	nd.cmd, nd.done = cmd, done
	nd.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-done:
		return fmt.Errorf("broker %d exited before serving", nd.id)
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("broker %d did not start", nd.id)
	}
}

// kill SIGKILLs a node and waits for it to exit.
func (c *testCluster) kill(id int32) {
	c.t.Helper()
	nd := c.nodes[id-1]
	nd.mu.Lock()
	cmd, done := nd.cmd, nd.done
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
	nd.mu.Lock()
	nd.cmd = nil
	nd.mu.Unlock()
}

// restart starts a killed node again on the same data dir and ports.
func (c *testCluster) restart(id int32) {
	c.t.Helper()
	if err := c.spawn(c.nodes[id-1]); err != nil {
		c.t.Fatal(err)
	}
}

func (c *testCluster) stopAll() {
	for _, nd := range c.nodes {
		nd.mu.Lock()
		cmd, done := nd.cmd, nd.done
		nd.mu.Unlock()
		if cmd == nil {
			continue
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
}

// seeds lists every node's address.
func (c *testCluster) seeds() []string {
	var out []string
	for _, nd := range c.nodes {
		out = append(out, nd.listen)
	}
	return out
}

func (c *testCluster) client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...), kgo.MetadataMinAge(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// partitionState reads a partition's leader, epoch and ISR from
// metadata.
func partitionState(ctx context.Context, adm *kadm.Client, topic string, part int32) (leader, epoch int32, isr []int32, err error) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return -1, -1, nil, err
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		return -1, -1, nil, fmt.Errorf("topic %s: %v", topic, td.Err)
	}
	p, ok := td.Partitions[part]
	if !ok {
		return -1, -1, nil, fmt.Errorf("no partition %d", part)
	}
	return p.Leader, p.LeaderEpoch, p.ISR, p.Err
}

// waitPartitionState polls metadata until cond holds (deadline 60s).
func waitPartitionState(t *testing.T, adm *kadm.Client, topic string, what string, cond func(leader int32, isr []int32) bool) (int32, int32, []int32) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		leader, epoch, isr, err := partitionState(ctx, adm, topic, 0)
		cancel()
		if errors.Is(err, kerr.LeaderNotAvailable) {
			err = nil // an offline partition is a state too
		}
		if err == nil && cond(leader, isr) {
			return leader, epoch, isr
		}
		last = fmt.Sprintf("leader %d epoch %d isr %v err %v", leader, epoch, isr, err)
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: last state %s", what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// produceTo sends one record to a broker and returns the partition's
// error code. The request goes with the acks the client is configured
// with (franz-go sets them on every produce).
func produceTo(ctx context.Context, cl *kgo.Client, node int32, topic string, value string) (int16, error) {
	req := kmsg.NewPtrProduceRequest()
	req.TimeoutMillis = 10000
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return 0, err
	}
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, td[topic].ID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = testBatch(recordbatch.NoProducer, value)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(node)))
	if err != nil {
		return 0, err
	}
	return resp.Topics[0].Partitions[0].ErrorCode, nil
}

// consumeCluster reads a one-partition topic from the start until it has
// reached the high watermark, returning the values.
func consumeCluster(t *testing.T, c *testCluster, topic string) []string {
	t.Helper()
	cl := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}), kgo.FetchMaxWait(200*time.Millisecond))
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var end int64
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			if o, ok := ends.Lookup(topic, 0); ok && o.Err == nil {
				end = o.Offset
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("list end offsets: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var out []string
	next := int64(0)
	for next < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed up to %d of %d", next, end)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, string(r.Value))
			next = r.Offset + 1
		})
	}
	return out
}

// createReplicated creates a one-partition topic with three replicas,
// placed by the cluster or on the given brokers (the first leads).
func createReplicated(t *testing.T, cl *kgo.Client, topic string, minISR string, replicas ...int32) {
	t.Helper()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if len(replicas) == 0 {
		var resp kadm.CreateTopicResponse
		resp, err = adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &minISR}, topic)
		if err == nil {
			err = resp.Err
		}
	} else {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 30000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Replicas = replicas
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = "min.insync.replicas", &minISR
		rt.Configs = append(rt.Configs, cfg)
		req.Topics = append(req.Topics, rt)
		var resp *kmsg.CreateTopicsResponse
		resp, err = req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
		}
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	waitPartitionState(t, adm, topic, "a full ISR", func(leader int32, isr []int32) bool { return leader > 0 && len(isr) == 3 })
}

// SCENARIOS.md 7: acks=all with min.insync.replicas=2 on three brokers.
// One follower down: writes go on. Two down: acks=all writes fail with
// NOT_ENOUGH_REPLICAS and reads go on. One back and caught up: writes
// resume. Every acknowledged record is read back.
func TestReplicationMinInsyncReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	// The controller quorum is broker 1 alone, brokers 2 and 3 are
	// broker-only: with two of three combined nodes down a quorum would
	// be lost and no ISR could shrink (as in Kafka's combined mode).
	c := startCluster(t, 3, 1)
	cl := c.client(kgo.DefaultProduceTopic("s7"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProduceRequestTimeout(20*time.Second))
	adm := kadm.NewClient(cl)
	createReplicated(t, cl, "s7", "2", 1, 2, 3)

	var acked []string
	produce := func(n int, tag string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i := range n {
			v := fmt.Sprintf("%s-%d", tag, i)
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
			acked = append(acked, v)
		}
	}
	produce(20, "all-up")

	leader, _, isr := waitPartitionState(t, adm, "s7", "a leader", func(l int32, isr []int32) bool { return l > 0 })
	var followers []int32
	for _, r := range isr {
		if r != leader {
			followers = append(followers, r)
		}
	}
	// Only the leader takes writes.
	{
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		code, err := produceTo(ctx, cl, followers[0], "s7", "misdirected")
		cancel()
		if err != nil || code != kerr.NotLeaderForPartition.Code {
			t.Fatalf("produce to follower %d: code %d, err %v; want NOT_LEADER_OR_FOLLOWER", followers[0], code, err)
		}
	}
	c.kill(followers[0])
	produce(20, "one-down") // waits out the ISR shrink, then goes on
	waitPartitionState(t, adm, "s7", "the ISR without the dead follower", func(l int32, isr []int32) bool {
		return l == leader && !slices.Contains(isr, followers[0])
	})

	c.kill(followers[1])
	waitPartitionState(t, adm, "s7", "the ISR down to the leader", func(l int32, isr []int32) bool {
		return l == leader && len(isr) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Clients are told of live brokers only, at their real addresses.
	if md, err := adm.Metadata(ctx); err != nil || len(md.Brokers) != 1 || md.Brokers[0].NodeID != leader || fmt.Sprintf("%s:%d", md.Brokers[0].Host, md.Brokers[0].Port) != c.nodes[leader-1].listen {
		t.Fatalf("metadata brokers with two down: %+v %v", md.Brokers, err)
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.IncludeFencedBrokers = true
	if resp, err := dc.RequestWith(ctx, cl); err != nil || len(resp.Brokers) != 3 {
		t.Fatalf("DescribeCluster including fenced brokers: %+v %v", resp, err)
	} else {
		for _, br := range resp.Brokers {
			if br.IsFenced != (br.NodeID != leader) {
				t.Fatalf("DescribeCluster: broker %d fenced %v", br.NodeID, br.IsFenced)
			}
		}
	}
	code, err := produceTo(ctx, cl, leader, "s7", "refused")
	if err != nil || code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with the ISR below min.insync.replicas: code %d (%v), err %v; want NOT_ENOUGH_REPLICAS", code, kerr.ErrorForCode(code), err)
	}
	// acks=1 is answered after the leader's own write, whatever the ISR.
	leaderAcks := c.client(kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if code, err := produceTo(ctx, leaderAcks, leader, "s7", "acks-1"); err != nil || code != 0 {
		t.Fatalf("acks=1 with the ISR below min.insync.replicas: code %d, err %v", code, err)
	}
	acked = append(acked, "acks-1")
	if got := consumeCluster(t, c, "s7"); !slices.Equal(got, acked) {
		t.Fatalf("reads with two brokers down: got %d records, want the %d acknowledged", len(got), len(acked))
	}

	c.restart(followers[0])
	waitPartitionState(t, adm, "s7", "the restarted follower back in the ISR", func(l int32, isr []int32) bool {
		return l == leader && slices.Contains(isr, followers[0])
	})
	produce(20, "resumed")
	if got := consumeCluster(t, c, "s7"); !slices.Equal(got, acked) {
		t.Fatalf("after recovery: got %v, want %v", got, acked)
	}
}

// SCENARIOS.md 8: the leader of a partition is SIGKILLed under acks=all
// load (RF 3, min.insync.replicas=2, an idempotent producer). A new
// leader from the ISR takes over within seconds, the producer carries
// on, and no acknowledged record is lost or written twice.
func TestReplicationLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	c := startCluster(t, 3, 3)
	cl := c.client(kgo.DefaultProduceTopic("s8"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProduceRequestTimeout(10*time.Second), kgo.MaxBufferedRecords(200))
	adm := kadm.NewClient(cl)
	createReplicated(t, cl, "s8", "2")
	// Any broker takes a metadata change, not only the controller.
	{
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		md, err := adm.Metadata(ctx)
		if err != nil {
			t.Fatal(err)
		}
		other := (md.Controller % 3) + 1
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "via-follower", 1, 3
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.Broker(int(other)))
		cancel()
		if err != nil || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("CreateTopics on broker %d (controller %d): %+v %v", other, md.Controller, resp, err)
		}
	}
	leader, epoch, isr := waitPartitionState(t, adm, "s8", "a leader", func(l int32, isr []int32) bool { return l > 0 && len(isr) == 3 })

	// Records deleted on the leader (DeleteRecords) stay deleted when
	// another replica leads.
	{
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for i := range 5 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "deleted-%d", i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		var o kadm.Offsets
		o.Add(kadm.Offset{Topic: "s8", Partition: 0, At: 5})
		resp, err := adm.DeleteRecords(ctx, o)
		cancel()
		if err != nil || resp.Error() != nil {
			t.Fatalf("delete records: %v %v", err, resp.Error())
		}
	}
	var mu sync.Mutex
	var acked []string
	var produceErr error
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := fmt.Sprintf("v%06d", i)
			cl.Produce(context.Background(), &kgo.Record{Value: []byte(v)}, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if produceErr == nil {
						produceErr = err
					}
					return
				}
				acked = append(acked, string(r.Value))
			})
		}
	}()
	waitCount := func(n int, what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for ackedCount() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d records acknowledged, want %d (produce error: %v)", what, ackedCount(), n, produceErr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitCount(300, "before the kill")

	killed := time.Now()
	c.kill(leader)
	before := ackedCount()
	newLeader, newEpoch, _ := waitPartitionState(t, adm, "s8", "a new leader", func(l int32, _ []int32) bool { return l > 0 && l != leader })
	took := time.Since(killed)
	t.Logf("leader %d killed; %d took over in %v", leader, newLeader, took)
	if !slices.Contains(isr, newLeader) || newEpoch <= epoch {
		t.Fatalf("new leader %d at epoch %d; want one of the ISR %v at an epoch above %d", newLeader, newEpoch, isr, epoch)
	}
	// "Within seconds": the session timeout, a controller election if
	// the controller died too, and slack for a busy machine.
	if limit := testSessionTimeout + 12*time.Second; took > limit {
		t.Fatalf("failover took %v, more than %v", took, limit)
	}
	// The new leader fences fetches at the old epoch and does not know
	// a future one.
	for _, tc := range []struct {
		epoch int32
		want  int16
	}{{epoch, kerr.FencedLeaderEpoch.Code}, {newEpoch + 1, kerr.UnknownLeaderEpoch.Code}, {newEpoch, 0}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		td, err := adm.ListTopics(ctx, "s8")
		if err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, 1<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "s8", td["s8"].ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.FetchOffset, rp.PartitionMaxBytes, rp.LogStartOffset = tc.epoch, 5, 1<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		// The new leader may learn of its election a moment after the
		// broker that answered the metadata query: until it does it
		// answers NOT_LEADER_OR_FOLLOWER, which a client retries.
		var resp *kmsg.FetchResponse
		for {
			resp, err = req.RequestWith(ctx, cl.Broker(int(newLeader)))
			if err != nil || resp.Topics[0].Partitions[0].ErrorCode != kerr.NotLeaderForPartition.Code || ctx.Err() != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if err != nil || resp.Topics[0].Partitions[0].ErrorCode != tc.want {
			t.Fatalf("fetch at epoch %d from the new leader (epoch %d): %+v %v; want code %d", tc.epoch, newEpoch, resp, err, tc.want)
		}
	}
	waitCount(before+300, "after the failover")
	close(stop)
	wg.Wait()
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if produceErr != nil {
		t.Fatalf("a produce failed: %v", produceErr)
	}
	want := slices.Clone(acked)
	mu.Unlock()

	c.restart(leader)
	got := consumeCluster(t, c, "s8")
	seen := make(map[string]int, len(got))
	for _, v := range got {
		seen[v]++
	}
	var lost, dup []string
	for v := range seen {
		if strings.HasPrefix(v, "deleted-") {
			t.Fatalf("read %s, deleted before the failover", v)
		}
	}
	for _, v := range want {
		if seen[v] == 0 {
			lost = append(lost, v)
		}
	}
	for v, n := range seen {
		if n > 1 {
			dup = append(dup, v)
		}
	}
	if len(lost) > 0 || len(dup) > 0 {
		t.Fatalf("%d acknowledged records lost (first %v), %d duplicated (%v), of %d acknowledged, %d read", len(lost), first(lost, 5), len(dup), first(dup, 5), len(want), len(got))
	}
	// The old leader rejoins as a follower, cut back to where its log
	// agrees with the new leader's, and catches up.
	waitPartitionState(t, adm, "s8", "the old leader back in the ISR", func(l int32, isr []int32) bool { return slices.Contains(isr, leader) })
	// Replicas never diverge: with every replica in the ISR and one more
	// acks=all write, the three logs are the same bytes.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("last")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c.stopAll()
	var logs [][]byte
	for _, nd := range c.nodes {
		logs = append(logs, readPartitionLog(t, filepath.Join(nd.dir, "logs", "s8-0")))
	}
	for i := 1; i < len(logs); i++ {
		if !bytes.Equal(logs[0], logs[i]) {
			t.Fatalf("broker %d's log (%d bytes) differs from broker 1's (%d bytes)", i+1, len(logs[i]), len(logs[0]))
		}
	}
}

// readPartitionLog opens a stopped broker's partition log and returns its
// batches as stored.
func readPartitionLog(t *testing.T, dir string) []byte {
	t.Helper()
	l, err := log.Open(dir, log.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out []byte
	for off := l.StartOffset(); off < l.EndOffset(); {
		rr, err := l.Read(off, 1<<20, l.EndOffset())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rr.Records...)
		// The next batch starts after the last one read.
		b := rr.Records
		for len(b) >= 61 {
			size := int(binary.BigEndian.Uint32(b[8:])) + 12
			off = int64(binary.BigEndian.Uint64(b)) + int64(binary.BigEndian.Uint32(b[23:])) + 1
			b = b[size:]
		}
	}
	return out
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// SCENARIOS.md 9: with every ISR member down the partition stays offline,
// even with an out-of-sync replica alive, until
// unclean.leader.election.enable is set; then that replica leads, and
// what is lost is exactly what it lacked.
func TestReplicationUncleanElection(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	// Brokers 1-3 are the controller quorum; the partition lives on 4,
	// 5 (broker-only) and 1, so its whole ISR can die with the quorum
	// intact.
	c := startCluster(t, 5, 3)
	cl := c.client(kgo.DefaultProduceTopic("s9"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProduceRequestTimeout(20*time.Second))
	adm := kadm.NewClient(cl)
	createReplicated(t, cl, "s9", "1", 4, 5, 1)
	produce := func(tag string, n int) []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var out []string
		for i := range n {
			v := fmt.Sprintf("%s-%d", tag, i)
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
			out = append(out, v)
		}
		return out
	}
	kept := produce("everyone", 10)
	// In the ISR after the acknowledgements: 5 has every record (it was
	// in the ISR for each, or rejoined having caught up).
	waitPartitionState(t, adm, "s9", "5 in the ISR", func(l int32, isr []int32) bool { return slices.Contains(isr, 5) })
	c.kill(5)
	waitPartitionState(t, adm, "s9", "5 out of the ISR", func(l int32, isr []int32) bool { return !slices.Contains(isr, 5) })
	lost := produce("without-5", 10)
	c.kill(1)
	waitPartitionState(t, adm, "s9", "the ISR down to 4", func(l int32, isr []int32) bool { return l == 4 && len(isr) == 1 })
	lost = append(lost, produce("only-4", 10)...)
	c.kill(4)
	c.restart(5)
	// Offline: no leader, however long we look (a few sessions).
	waitPartitionState(t, adm, "s9", "the partition offline", func(l int32, isr []int32) bool { return l < 0 && slices.Equal(isr, []int32{4}) })
	deadline := time.Now().Add(2 * testSessionTimeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		l, _, _, _ := partitionState(ctx, adm, "s9", 0)
		cancel()
		if l >= 0 {
			t.Fatalf("leader %d elected without unclean election", l)
		}
		time.Sleep(100 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v := "true"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "unclean.leader.election.enable", Value: &v}}, "s9"); err != nil {
		t.Fatal(err)
	}
	waitPartitionState(t, adm, "s9", "5 elected uncleanly", func(l int32, isr []int32) bool { return l == 5 && slices.Equal(isr, []int32{5}) })
	after := produce("after", 5)
	// Broker 5 was in the ISR after "everyone" was acknowledged, so it
	// has all of it; it never had what was written after it died, which
	// is the loss.
	got := consumeCluster(t, c, "s9")
	if want := append(slices.Clone(kept), after...); !slices.Equal(got, want) {
		t.Fatalf("after the unclean election read %v, want %v (lost: %v)", got, want, lost)
	}
	n := len(kept)
	t.Logf("unclean election kept %d of the %d records written before broker 5 died, lost %d written after", n, len(kept), len(lost))
}

// A replicated partition's high watermark survives a clean restart (it is
// checkpointed): the leader, back alone with its followers still down
// and not yet fenced, serves everything committed before at once rather
// than waiting for followers that are not there. (Without a controlled
// shutdown: with one, broker 1 stopping first would hand its leadership
// to a follower.)
func TestReplicationHighWatermarkCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	t.Setenv(opsNoControlledShutdownEnv, "1")
	c := startCluster(t, 3, 1)
	cl := c.client(kgo.DefaultProduceTopic("hw"), kgo.RequiredAcks(kgo.AllISRAcks()))
	createReplicated(t, cl, "hw", "2", 1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "r%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	c.stopAll()
	c.restart(1)
	cl2 := c.client()
	ends, err := kadm.NewClient(cl2).ListEndOffsets(ctx, "hw")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("hw", 0); o.Err != nil || o.Offset != 10 {
		t.Fatalf("high watermark right after the restart: %+v, want 10", o)
	}
}

// A follower that was down while the leader's log start moved past its
// log end (DeleteRecords here; retention does the same) cannot fetch what
// follows its end: it empties its log, starts at the leader's log start,
// catches up and rejoins the ISR, and its log is then the leader's.
func TestReplicationFollowerBehindLogStart(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	c := startCluster(t, 3, 1)
	cl := c.client(kgo.DefaultProduceTopic("behind"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProduceRequestTimeout(20*time.Second))
	adm := kadm.NewClient(cl)
	createReplicated(t, cl, "behind", "1", 1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	seg := "1024"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: &seg}}, "behind"); err != nil {
		t.Fatal(err)
	}
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "r%03d", i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, 10)
	c.kill(3)
	produce(10, 60)
	var o kadm.Offsets
	o.Add(kadm.Offset{Topic: "behind", Partition: 0, At: 55})
	if resp, err := adm.DeleteRecords(ctx, o); err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}
	c.restart(3)
	waitPartitionState(t, adm, "behind", "broker 3 back in the ISR", func(l int32, isr []int32) bool { return slices.Contains(isr, 3) })
	produce(60, 61)
	c.stopAll()
	leaderLog := readPartitionLog(t, filepath.Join(c.nodes[0].dir, "logs", "behind-0"))
	followerLog := readPartitionLog(t, filepath.Join(c.nodes[2].dir, "logs", "behind-0"))
	if len(leaderLog) == 0 || !bytes.Equal(leaderLog, followerLog) {
		t.Fatalf("follower's log (%d bytes) is not the leader's (%d bytes)", len(followerLog), len(leaderLog))
	}
}

// Transactions on a replicated topic: followers copy the transaction's
// records and its markers (control batches and all) from the leader,
// read_committed consumers see only the committed records, and the three
// logs end up the same bytes. The partition is led by the transaction
// coordinator's broker: markers to a partition led elsewhere (Kafka's
// WriteTxnMarkers between brokers) are not there yet.
func TestReplicationTransactions(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	c := startCluster(t, 3, 3)
	admin := c.client()
	var coord int32
	{
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType = 1
		req.CoordinatorKeys = []string{"tx-producer"}
		resp, err := req.RequestWith(ctx, admin)
		cancel()
		if err != nil || len(resp.Coordinators) != 1 || resp.Coordinators[0].ErrorCode != 0 {
			t.Fatalf("find coordinator: %+v %v", resp, err)
		}
		coord = resp.Coordinators[0].NodeID
	}
	createReplicated(t, admin, "tx", "2", coord, coord%3+1, (coord+1)%3+1)
	p := c.client(kgo.DefaultProduceTopic("tx"), kgo.TransactionalID("tx-producer"), kgo.RequiredAcks(kgo.AllISRAcks()))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, commit := range []bool{true, false, true} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%v-%d", commit, i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	cons := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"tx": {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var got []string
	for len(got) < 6 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed read %v", got)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for _, v := range got {
		if strings.HasPrefix(v, "false") {
			t.Fatalf("read_committed read an aborted record: %v", got)
		}
	}
	// One more committed write so every replica has every marker.
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("last")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	// Markers are written after the commit returns; wait until the HW
	// covers the last one (the LSO reaches the log end).
	for {
		ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, "tx")
		o, _ := ends.Lookup("tx", 0)
		if err == nil && o.Offset == 3*4+2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("end offset %+v %v, want 14", o, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitPartitionState(t, kadm.NewClient(admin), "tx", "a full ISR", func(l int32, isr []int32) bool { return len(isr) == 3 })
	p.Close()
	c.stopAll()
	var logs [][]byte
	for _, nd := range c.nodes {
		logs = append(logs, readPartitionLog(t, filepath.Join(nd.dir, "logs", "tx-0")))
	}
	for i := 1; i < len(logs); i++ {
		if !bytes.Equal(logs[0], logs[i]) {
			t.Fatalf("broker %d's log (%d bytes) differs from broker 1's (%d bytes)", i+1, len(logs[i]), len(logs[0]))
		}
	}
}
