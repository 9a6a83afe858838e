package clustertest_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
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
	"github.com/runnel-dev/runnel/internal/history"
)

// Operations on a cluster of broker processes: controlled shutdown and a
// rolling restart, preferred and unclean leader elections, reassignment.

// Environment of a cluster child that overrides the test timings
// (replication_test.go's clusterChildConfig applies them).
const (
	opsSessionEnv   = childEnv + "_SESSION_TIMEOUT"
	opsLagEnv       = childEnv + "_REPLICA_LAG"
	opsRebalanceEnv = childEnv + "_LEADER_IMBALANCE_CHECK"
	// opsNoControlledShutdownEnv makes SIGTERM stop a child without a
	// controlled shutdown (controlled.shutdown.enable=false).
	opsNoControlledShutdownEnv = childEnv + "_NO_CONTROLLED_SHUTDOWN"
)

// rollingRoundsEnv sets how many rounds of restarts the rolling restart
// test runs (default 1: each broker once).
const rollingRoundsEnv = "RUNNEL_TEST_ROLLING_ROUNDS"

func opsChildConfig(cfg *broker.Config) {
	cfg.DisableControlledShutdown = os.Getenv(opsNoControlledShutdownEnv) != ""
	for env, dst := range map[string]*time.Duration{
		opsSessionEnv:   &cfg.BrokerSessionTimeout,
		opsLagEnv:       &cfg.ReplicaLagTimeMax,
		opsRebalanceEnv: &cfg.LeaderImbalanceCheckInterval,
	} {
		if d, err := time.ParseDuration(os.Getenv(env)); err == nil {
			*dst = d
		}
	}
}

// terminate stops a node with SIGTERM (a controlled shutdown) and waits
// for it to exit.
func (c *testCluster) terminate(id int32) {
	c.t.Helper()
	nd := c.nodes[id-1]
	nd.mu.Lock()
	cmd, done := nd.cmd, nd.done
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		<-done
		c.t.Fatalf("broker %d did not stop within 90s of SIGTERM", id)
	}
	nd.mu.Lock()
	nd.cmd = nil
	nd.mu.Unlock()
}

// topicState reads every partition of a topic from metadata.
func topicState(ctx context.Context, adm *kadm.Client, topic string) (map[int32]kadm.PartitionDetail, error) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		return nil, fmt.Errorf("topic %s: %v", topic, td.Err)
	}
	return td.Partitions, nil
}

// waitTopicState polls metadata until cond holds for every partition of
// the topic (deadline 90s).
func waitTopicState(t *testing.T, adm *kadm.Client, topic, what string, cond func(p kadm.PartitionDetail) bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		parts, err := topicState(ctx, adm, topic)
		cancel()
		ok := err == nil && len(parts) > 0
		for _, p := range parts {
			ok = ok && cond(p)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s of %s: last state %+v, err %v", what, topic, parts, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createAssigned creates a one-partition topic on the given replicas (the
// first leads) with configs, and waits until they are all in the ISR.
func createAssigned(t *testing.T, cl *kgo.Client, topic string, configs map[string]string, replicas ...int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Replicas = replicas
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	for k, v := range configs {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = k, &v
		rt.Configs = append(rt.Configs, cfg)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	waitTopicState(t, kadm.NewClient(cl), topic, "a full ISR", func(p kadm.PartitionDetail) bool {
		return p.Leader == replicas[0] && len(p.ISR) == len(replicas)
	})
}

// stoppableLoad is a load that may be stopped twice: by the check, and
// by the deferred stop of a test that failed before it.
type stoppableLoad struct {
	*history.Load
	once sync.Once
}

func startLoad(t *testing.T, cfg history.LoadConfig, rec *history.Recorder) *stoppableLoad {
	t.Helper()
	l, err := history.StartLoad(cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	sl := &stoppableLoad{Load: l}
	t.Cleanup(func() { sl.Stop(time.Second) })
	return sl
}

func (l *stoppableLoad) Stop(flush time.Duration) { l.once.Do(func() { l.Load.Stop(flush) }) }

// waitProgress waits until the load has had n more acknowledgements.
func waitProgress(t *testing.T, l *stoppableLoad, n int64, what string) {
	t.Helper()
	want := l.Acked() + n
	deadline := time.Now().Add(90 * time.Second)
	for l.Acked() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the load made no progress (%d acked, %d failed)", what, l.Acked(), l.Failed())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// firstFailure is the error of the first failed send recorded.
func firstFailure(rec *history.Recorder) error {
	for _, s := range rec.History().Sends {
		if s.Err != nil {
			return s.Err
		}
	}
	return nil
}

// checkHistory stops the load, reads the topic back and checks that no
// send failed and that nothing acknowledged was lost or written twice.
func checkHistory(t *testing.T, c *testCluster, l *stoppableLoad, rec *history.Recorder, topic string) {
	t.Helper()
	l.Stop(60 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := history.ReadAll(ctx, rec, c.seeds(), topic); err != nil {
		t.Fatal(err)
	}
	rep := history.Check(rec.History(), history.Options{Idempotent: true})
	t.Logf("%s: %s", topic, rep.Summary())
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 0 || rep.Acked == 0 {
		t.Fatalf("%d acks=all sends failed (%d acknowledged; first: %v); a controlled shutdown should fail none", rep.Failed, rep.Acked, firstFailure(rec))
	}
}

// The rolling restart: each of three brokers in turn is stopped
// with SIGTERM and started again under acks=all load (RF 3,
// min.insync.replicas=2, idempotent producers). The session timeout and
// the replica lag are far longer than a record may wait for delivery, so
// a broker that stopped without moving its leaderships and leaving the
// ISRs would fail sends: every failure is one the controlled shutdown
// should have prevented. Nothing acknowledged is lost or duplicated. With
// auto.leader.rebalance.enable (checked every second here) leadership
// returns to the preferred replicas once the restarted brokers are back in
// their ISRs.
func TestReplicationRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	t.Setenv(opsSessionEnv, "30s")
	t.Setenv(opsLagEnv, "30s")
	t.Setenv(opsRebalanceEnv, "1s")
	rounds := 1
	if n, err := strconv.Atoi(os.Getenv(rollingRoundsEnv)); err == nil && n > 0 {
		rounds = n
	}
	c := startCluster(t, 3, 3)
	cl := c.client()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	minISR := "2"
	if resp, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": &minISR}, "roll"); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	fullISR := func(p kadm.PartitionDetail) bool { return p.Leader > 0 && len(p.ISR) == 3 }
	waitTopicState(t, adm, "roll", "a full ISR", fullISR)

	var rec history.Recorder
	load := startLoad(t, history.LoadConfig{
		Brokers: c.seeds(), Topic: "roll", Acks: -1, Idempotent: true, Producers: 2, MaxBuffered: 100, Consume: true,
		ClientOpts: []kgo.Opt{kgo.RecordDeliveryTimeout(10 * time.Second), kgo.MetadataMinAge(100 * time.Millisecond)},
	}, &rec)
	for round := range rounds {
		for id := int32(1); id <= 3; id++ {
			waitProgress(t, load, 200, fmt.Sprintf("round %d before stopping %d", round, id))
			c.terminate(id)
			// Stopped, it leads nothing and is in no ISR.
			waitTopicState(t, adm, "roll", fmt.Sprintf("broker %d out of the ISRs", id), func(p kadm.PartitionDetail) bool {
				return p.Leader > 0 && p.Leader != id && !slices.Contains(p.ISR, id)
			})
			waitProgress(t, load, 200, fmt.Sprintf("round %d with %d stopped", round, id))
			c.restart(id)
			// An operator waits for no under-replicated partitions
			// before the next.
			waitTopicState(t, adm, "roll", fmt.Sprintf("broker %d back in the ISRs", id), fullISR)
			if f := load.Failed(); f != 0 {
				t.Fatalf("round %d, broker %d: %d acks=all sends failed, first: %v", round, id, f, firstFailure(&rec))
			}
		}
	}
	waitTopicState(t, adm, "roll", "the preferred leaders back", func(p kadm.PartitionDetail) bool {
		return p.Leader == p.Replicas[0] && len(p.ISR) == 3
	})
	waitProgress(t, load, 200, "after the restarts")
	checkHistory(t, c, load, &rec, "roll")
}

// ElectLeaders: a preferred election is not needed while the preferred
// replica leads, cannot happen while it is down or out of the ISR, and
// moves the lead back once it is in; an unclean election gives an offline
// partition a live out-of-sync replica.
func TestReplicationElectLeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	// The quorum is broker 1 alone, so brokers 2 and 3 can both be down
	// with the controller up.
	c := startCluster(t, 3, 1)
	cl := c.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProduceRequestTimeout(20*time.Second))
	adm := kadm.NewClient(cl)
	createAssigned(t, cl, "pe", nil, 2, 1, 3)
	elect := func(how kadm.ElectLeadersHow, topic string) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := adm.ElectLeaders(ctx, how, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			t.Fatalf("ElectLeaders %s: %v", topic, err)
		}
		r, ok := res[topic][0]
		if !ok {
			t.Fatalf("ElectLeaders %s: no result in %+v", topic, res)
		}
		return r.Err
	}
	if err := elect(kadm.ElectPreferredReplica, "pe"); !errors.Is(err, kerr.ElectionNotNeeded) {
		t.Fatalf("preferred election with the preferred replica leading: %v", err)
	}
	if err := elect(kadm.ElectPreferredReplica, "no-such-topic"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("election of an unknown topic: %v", err)
	}
	c.terminate(2)
	leader, epoch, _ := waitPartitionState(t, adm, "pe", "the lead moved off 2", func(l int32, isr []int32) bool { return l == 1 })
	if err := elect(kadm.ElectPreferredReplica, "pe"); !errors.Is(err, kerr.PreferredLeaderNotAvailable) {
		t.Fatalf("preferred election with the preferred replica down: %v", err)
	}
	c.restart(2)
	waitPartitionState(t, adm, "pe", "2 back in the ISR", func(l int32, isr []int32) bool { return l == leader && len(isr) == 3 })
	if err := elect(kadm.ElectPreferredReplica, "pe"); err != nil {
		t.Fatalf("preferred election: %v", err)
	}
	_, newEpoch, _ := waitPartitionState(t, adm, "pe", "2 leading again", func(l int32, isr []int32) bool { return l == 2 })
	if newEpoch <= epoch {
		t.Fatalf("leader epoch %d after the election, %d before", newEpoch, epoch)
	}
	// Every partition: the ones that need no election are left out.
	{
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil)
		cancel()
		if err != nil || len(res) != 0 {
			t.Fatalf("preferred election of every partition, all led by their preferred replica: %+v %v", res, err)
		}
	}

	// Unclean: the ISR (3, then 2) dies; 3 comes back out of sync.
	createAssigned(t, cl, "pu", map[string]string{"min.insync.replicas": "1"}, 3, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "pu", Value: []byte("a")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c.kill(3)
	waitPartitionState(t, adm, "pu", "3 out of the ISR", func(l int32, isr []int32) bool { return l == 2 && slices.Equal(isr, []int32{2}) })
	c.kill(2)
	c.restart(3)
	waitPartitionState(t, adm, "pu", "the partition offline", func(l int32, isr []int32) bool { return l < 0 })
	if err := elect(kadm.ElectPreferredReplica, "pu"); !errors.Is(err, kerr.PreferredLeaderNotAvailable) {
		t.Fatalf("preferred election of an offline partition whose preferred replica is out of sync: %v", err)
	}
	if err := elect(kadm.ElectLiveReplica, "pu"); err != nil {
		t.Fatalf("unclean election: %v", err)
	}
	waitPartitionState(t, adm, "pu", "3 elected uncleanly", func(l int32, isr []int32) bool { return l == 3 && slices.Equal(isr, []int32{3}) })
	if err := elect(kadm.ElectLiveReplica, "pu"); !errors.Is(err, kerr.ElectionNotNeeded) {
		t.Fatalf("unclean election with a live leader: %v", err)
	}
}

// Reassignment: a partition on brokers {1,2} moves to {2,3} under
// acks=all load. While broker 3 is down the reassignment cannot complete
// and ListPartitionReassignments shows it (and a cancel undoes one); once 3
// is back it catches up, joins the ISR, broker 1 leaves (handing over the
// lead and deleting its copy), and the list is empty. Nothing
// acknowledged is lost and no send fails.
func TestReplicationReassignment(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	c := startCluster(t, 3, 3)
	cl := c.client()
	adm := kadm.NewClient(cl)
	createAssigned(t, cl, "ra", map[string]string{"min.insync.replicas": "1"}, 1, 2)
	var rec history.Recorder
	load := startLoad(t, history.LoadConfig{
		Brokers: c.seeds(), Topic: "ra", Acks: -1, Idempotent: true, MaxBuffered: 100, Consume: true,
		ClientOpts: []kgo.Opt{kgo.MetadataMinAge(100 * time.Millisecond)},
	}, &rec)
	waitProgress(t, load, 500, "before the reassignment")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reassign := func(replicas []int32) {
		t.Helper()
		var req kadm.AlterPartitionAssignmentsReq
		if replicas == nil {
			req.CancelAssign("ra", 0)
		} else {
			req.Assign("ra", 0, replicas)
		}
		res, err := adm.AlterPartitionAssignments(ctx, req)
		if err == nil {
			err = res["ra"][0].Err
		}
		if err != nil {
			t.Fatalf("reassign to %v: %v", replicas, err)
		}
	}
	listed := func() (kadm.ListPartitionReassignmentsResponse, bool) {
		t.Helper()
		res, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"ra": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		r, ok := res["ra"][0]
		return r, ok
	}

	c.terminate(3)
	reassign([]int32{1, 3})
	if r, ok := listed(); !ok || !slices.Equal(r.Replicas, []int32{1, 3, 2}) || !slices.Equal(r.AddingReplicas, []int32{3}) || !slices.Equal(r.RemovingReplicas, []int32{2}) {
		t.Fatalf("reassignment to {1,3} listed as %+v (%v)", r, ok)
	}
	reassign(nil)
	if r, ok := listed(); ok {
		t.Fatalf("cancelled reassignment still listed: %+v", r)
	}
	waitTopicState(t, adm, "ra", "the cancel", func(p kadm.PartitionDetail) bool {
		return p.Leader == 1 && len(p.Replicas) == 2 && !slices.Contains(p.Replicas, 3)
	})

	reassign([]int32{2, 3})
	if r, ok := listed(); !ok || !slices.Equal(r.Replicas, []int32{2, 3, 1}) || !slices.Equal(r.AddingReplicas, []int32{3}) || !slices.Equal(r.RemovingReplicas, []int32{1}) {
		t.Fatalf("reassignment to {2,3} listed as %+v (%v)", r, ok)
	}
	waitProgress(t, load, 200, "with the reassignment waiting for broker 3")
	c.restart(3)
	waitTopicState(t, adm, "ra", "the reassignment done", func(p kadm.PartitionDetail) bool {
		return slices.Equal(p.Replicas, []int32{2, 3}) && len(p.ISR) == 2 && p.Leader == 2
	})
	if r, ok := listed(); ok {
		t.Fatalf("completed reassignment still listed: %+v", r)
	}
	// Broker 1 deletes its copy.
	dir := filepath.Join(c.nodes[0].dir, "logs", "ra-0")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker 1 kept %s after leaving the replicas", dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitProgress(t, load, 500, "after the reassignment")
	checkHistory(t, c, load, &rec, "ra")
}

// scrapeGauge reads one unlabelled series from a broker's /metrics.
func scrapeGauge(t *testing.T, metricsAddr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("%s not in %s/metrics", name, metricsAddr)
	return 0
}

// The replication metrics of in-process cluster members: a broker stopped
// (controlled shutdown) leaves an RF 3 partition under-replicated and
// under its min.insync.replicas of 3, and an RF 1 partition on it offline;
// back, it rejoins the ISR (an expansion) and the counts are 0 again.
func TestReplicationMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	ports := reservePorts(t, 6)
	var q []string
	for i := range 3 {
		q = append(q, fmt.Sprintf("%d@%s", i+1, ports[2*i+1]))
	}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	config := func(i int) broker.Config {
		return broker.Config{
			NodeID: int32(i + 1), DataDir: dirs[i], Listen: ports[2*i], MetricsListen: "127.0.0.1:0",
			ControllerQuorum: strings.Join(q, ","), BrokerSessionTimeout: testSessionTimeout,
			BrokerHeartbeatInterval: testHeartbeat, ReplicaLagTimeMax: testReplicaLag,
			OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1,
		}
	}
	brokers := make([]*broker.Broker, 3)
	errs := make(chan error, 3)
	for i := range 3 {
		go func() {
			var err error
			brokers[i], err = broker.Start(context.Background(), config(i))
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, b := range brokers {
			if b != nil {
				b.Close()
			}
		}
	}()
	cl, err := kgo.NewClient(kgo.SeedBrokers(ports[0], ports[2], ports[4]), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	createAssigned(t, cl, "m3", map[string]string{"min.insync.replicas": "3"}, 1, 2, 3)
	createAssigned(t, cl, "m1", nil, 3)

	// sum adds a series over the live brokers; waitSum polls until it is
	// want.
	sum := func(name string) float64 {
		var n float64
		for _, b := range brokers {
			if b != nil {
				n += scrapeGauge(t, b.MetricsAddr(), name)
			}
		}
		return n
	}
	waitSum := func(name string, want float64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for got := sum(name); got != want; got = sum(name) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v, want %v", name, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, name := range []string{"runnel_broker_under_replicated_partitions", "runnel_broker_under_min_isr_partitions", "runnel_broker_offline_partitions"} {
		waitSum(name, 0)
	}
	waitSum("runnel_broker_active_controller", 1)
	expands := sum("runnel_broker_isr_expands_total")

	if err := brokers[2].Close(); err != nil {
		t.Fatal(err)
	}
	brokers[2] = nil
	// Under-replicated: m3 and every internal topic partition (RF 3).
	waitTopicState(t, adm, "m3", "broker 3 out of the ISR", func(p kadm.PartitionDetail) bool { return len(p.ISR) == 2 })
	md, err := adm.Metadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	under := 0
	for _, td := range md.Topics {
		for _, p := range td.Partitions {
			if p.Leader >= 0 && len(p.ISR) < len(p.Replicas) {
				under++
			}
		}
	}
	if under < 1 {
		t.Fatalf("no under-replicated partition in metadata: %+v", md.Topics)
	}
	waitSum("runnel_broker_under_replicated_partitions", float64(under))
	waitSum("runnel_broker_under_min_isr_partitions", 1)
	waitSum("runnel_broker_offline_partitions", 1)

	brokers[2], err = broker.Start(context.Background(), config(2))
	if err != nil {
		t.Fatal(err)
	}
	waitTopicState(t, adm, "m3", "broker 3 back in the ISR", func(p kadm.PartitionDetail) bool { return len(p.ISR) == 3 })
	for _, name := range []string{"runnel_broker_under_replicated_partitions", "runnel_broker_under_min_isr_partitions", "runnel_broker_offline_partitions"} {
		waitSum(name, 0)
	}
	if got := sum("runnel_broker_isr_expands_total"); got <= expands {
		t.Fatalf("runnel_broker_isr_expands_total %v after broker 3 rejoined, %v before", got, expands)
	}
}
