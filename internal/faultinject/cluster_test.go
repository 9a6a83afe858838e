package faultinject_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/faultinject"
	"github.com/runnel-dev/runnel/internal/freeport"
	"github.com/runnel-dev/runnel/internal/history"
)

// A three-broker cluster whose every link runs through a proxy the test
// controls.
//
// Broker n listens on 127.0.0.1:P and advertises 127.0.0.(10+n):P, where
// a front proxy forwards to it: clients reach the brokers only through
// the front proxies. Between brokers there is a proxy per directed link
// and listener: links[a][b].kafka carries the connections broker a opens
// to broker b's Kafka listener (replica fetches, transaction markers),
// links[a][b].ctrl those to b's controller listener (the metadata Raft,
// heartbeats and forwarded controller calls). Each broker is started with
// --peer-routes mapping every other node's advertised and quorum address
// to the proxy of its own link to it, and its own to its listeners
// directly, so it dials nothing else:
//
//	client ──▶ front[b] ──▶ broker b ◀── links[a][b] ◀── broker a
//
// Cutting links[a][b] and links[b][a] separates a from b both ways while
// clients still reach both; dropping one direction of both makes the
// pair one-way.
type fiCluster struct {
	t     *testing.T
	procs []*faultinject.Process // index = node id - 1
	dirs  []string               // data directories, by node id - 1
	kafka []*faultinject.Proxy   // front: clients' way into each Kafka listener
	links [][]peerLink           // [a-1][b-1]: broker a's way to broker b; nil for a == b
	cl    *kgo.Client            // c.admin()'s client
	adm   *kadm.Client
	// failure is what c.fatalf failed the test with.
	failure string
}

// peerLink is the two proxies broker a dials broker b through.
type peerLink struct {
	kafka, ctrl *faultinject.Proxy
}

// proxies returns the link's proxies, or none for a broker and itself.
func (l peerLink) proxies() []*faultinject.Proxy {
	if l.kafka == nil {
		return nil
	}
	return []*faultinject.Proxy{l.kafka, l.ctrl}
}

// Cluster timing, as the broker package's cluster tests: a silent broker
// is fenced after 3 s, a follower that stops fetching leaves the ISR
// after 4 s.
var clusterFlags = []string{
	"--broker-session-timeout", "3s",
	"--broker-heartbeat-interval", "300ms",
	"--replica-lag-time-max", "4s",
	"--log-level", "warn",
}

// freePort returns a port free on 127.0.0.1 now.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := freeport.Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	return p[0]
}

// frontHost is the loopback address broker n is known by.
func frontHost(n int) string { return "127.0.0." + strconv.Itoa(10+n) }

// newClusterProxy starts a proxy on listen to target, closed with the test.
func newClusterProxy(t *testing.T, listen, target string) *faultinject.Proxy {
	t.Helper()
	p, err := faultinject.NewProxy(listen, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// startFICluster starts the cluster; flags, after clusterFlags, override
// them for every broker.
func startFICluster(t *testing.T, flags ...string) *fiCluster {
	t.Helper()
	const n = 3
	c := &fiCluster{t: t, dirs: make([]string, n)}
	kafkaPorts, ctrlPorts := make([]int, n), make([]int, n)
	// The addresses every node knows node i by: its advertised Kafka
	// listener and its quorum entry.
	kafkaAddr, ctrlAddr := make([]string, n), make([]string, n)
	var quorum []string
	for i := range n {
		kafkaPorts[i], ctrlPorts[i] = freePort(t), freePort(t)
		kafkaAddr[i] = net.JoinHostPort(frontHost(i+1), strconv.Itoa(kafkaPorts[i]))
		ctrlAddr[i] = net.JoinHostPort(frontHost(i+1), strconv.Itoa(ctrlPorts[i]))
		quorum = append(quorum, fmt.Sprintf("%d@%s", i+1, ctrlAddr[i]))
		c.kafka = append(c.kafka, newClusterProxy(t, kafkaAddr[i], net.JoinHostPort("127.0.0.1", strconv.Itoa(kafkaPorts[i]))))
	}
	routes := make([][]string, n)
	c.links = make([][]peerLink, n)
	for a := range n {
		c.links[a] = make([]peerLink, n)
		for b := range n {
			kafkaDirect := net.JoinHostPort("127.0.0.1", strconv.Itoa(kafkaPorts[b]))
			ctrlDirect := net.JoinHostPort("127.0.0.1", strconv.Itoa(ctrlPorts[b]))
			if a == b {
				routes[a] = append(routes[a], kafkaAddr[b]+"="+kafkaDirect, ctrlAddr[b]+"="+ctrlDirect)
				continue
			}
			l := peerLink{
				kafka: newClusterProxy(t, "127.0.0.1:0", kafkaDirect),
				ctrl:  newClusterProxy(t, "127.0.0.1:0", ctrlDirect),
			}
			c.links[a][b] = l
			routes[a] = append(routes[a], kafkaAddr[b]+"="+l.kafka.Addr(), ctrlAddr[b]+"="+l.ctrl.Addr())
		}
	}
	bin := runnelBin(t)
	c.procs = make([]*faultinject.Process, n)
	errs := make(chan error, n)
	// Each node waits at start for a quorum and for the others to
	// register, so they start together.
	for i := range n {
		c.dirs[i] = t.TempDir()
		args := append([]string{
			"--node-id", strconv.Itoa(i + 1),
			"--data-dir", c.dirs[i],
			"--listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(kafkaPorts[i])),
			"--advertised-host", frontHost(i + 1),
			"--controller-listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(ctrlPorts[i])),
			"--controller-quorum", strings.Join(quorum, ","),
			"--peer-routes", strings.Join(routes[i], ","),
		}, append(slices.Clone(clusterFlags), flags...)...)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			p, err := faultinject.StartBroker(ctx, bin, args...)
			c.procs[i] = p
			errs <- err
		}()
	}
	var firstErr error
	for range n {
		if err := <-errs; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	t.Cleanup(func() {
		for i, p := range c.procs {
			if p == nil {
				continue
			}
			p.Close()
			if t.Failed() {
				t.Logf("broker %d output:\n%s", i+1, p.Output())
			}
		}
		if t.Failed() && c.failure != "" {
			t.Logf("failed (the brokers' output is above): %s", c.failure)
		}
	})
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return c
}

// peerProxies returns the proxies of every link between node and the
// other brokers, both ways: out are the ones node dials through, in the
// ones the others dial node through.
func (c *fiCluster) peerProxies(node int) (out, in []*faultinject.Proxy) {
	for other := range c.links {
		out = append(out, c.links[node-1][other].proxies()...)
		in = append(in, c.links[other][node-1].proxies()...)
	}
	return out, in
}

// oneWay makes every link between node and the other brokers one-way:
// with deaf, node still sends to them and hears nothing back; without,
// it hears them and what it sends is lost. On a connection node opened
// the bytes towards it flow Downstream; on one the others opened,
// Upstream.
func (c *fiCluster) oneWay(node int, deaf bool) {
	out, in := c.peerProxies(node)
	toNode, fromNode := faultinject.Downstream, faultinject.Upstream
	if !deaf {
		toNode, fromNode = fromNode, toNode
	}
	for _, p := range out {
		p.Drop(toNode)
	}
	for _, p := range in {
		p.Drop(fromNode)
	}
}

// healAll undoes every fault on every proxy.
func (c *fiCluster) healAll() {
	for _, p := range c.kafka {
		p.Heal()
	}
	for a := range c.links {
		for b := range c.links[a] {
			for _, p := range c.links[a][b].proxies() {
				p.Heal()
			}
		}
	}
}

// seeds are the brokers' advertised (proxied) addresses.
func (c *fiCluster) seeds() []string {
	var out []string
	for _, p := range c.kafka {
		out = append(out, p.Addr())
	}
	return out
}

// admin is a client of the whole cluster, made on first use.
func (c *fiCluster) admin() *kadm.Client {
	c.t.Helper()
	if c.adm == nil {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...)}, quickRecovery...)...)
		if err != nil {
			c.fatalf("%v", err)
		}
		c.t.Cleanup(cl.Close)
		c.cl, c.adm = cl, kadm.NewClient(cl)
	}
	return c.adm
}

// fatalf fails the test. The message is logged again after the
// brokers' output, which the cleanup logs: a CI log that keeps only the
// end of a long failure still says what failed.
func (c *fiCluster) fatalf(format string, args ...any) {
	c.t.Helper()
	c.failure = fmt.Sprintf(format, args...)
	c.t.Fatal(c.failure)
}

// createRF3 creates topic with replication factor 3 and
// min.insync.replicas 2, and waits until every partition has a leader
// and a full ISR.
func (c *fiCluster) createRF3(topic string, partitions int32) {
	c.t.Helper()
	adm := c.admin()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	two := "2"
	resp, err := adm.CreateTopic(ctx, partitions, 3, map[string]*string{"min.insync.replicas": &two}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		c.fatalf("create %s: %v", topic, err)
	}
	c.waitISR(ctx, topic, 3)
}

// waitISR polls until every broker, asked on its own, reports every
// partition of topic with the same leader and an ISR of want. Asking one
// broker is not enough: one just back from a partition answers from the
// metadata it had before, in which it may still lead with a full ISR.
func (c *fiCluster) waitISR(ctx context.Context, topic string, want int) {
	c.t.Helper()
	c.admin()
	var last string
	for {
		if last = c.isrDisagreement(ctx, topic, want); last == "" {
			return
		}
		if ctx.Err() != nil {
			c.fatalf("%s: brokers do not agree on a full ISR of %d: %s", topic, want, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// isrDisagreement asks each broker for topic's metadata and says why
// they do not all report the same leaders and ISRs of want, or "".
func (c *fiCluster) isrDisagreement(ctx context.Context, topic string, want int) string {
	leaders := map[int32]int32{}
	for node := 1; node <= len(c.procs); node++ {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := req.RequestWith(rctx, c.cl.Broker(node))
		cancel()
		if err != nil {
			return fmt.Sprintf("broker %d: %v", node, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) == 0 {
			return fmt.Sprintf("broker %d: no partitions", node)
		}
		for _, p := range resp.Topics[0].Partitions {
			switch l, seen := leaders[p.Partition]; {
			case p.ErrorCode != 0 || p.Leader < 0:
				return fmt.Sprintf("broker %d: partition %d: leader %d, %v", node, p.Partition, p.Leader, kerr.ErrorForCode(p.ErrorCode))
			case len(p.ISR) < want:
				return fmt.Sprintf("broker %d: partition %d: ISR %v", node, p.Partition, p.ISR)
			case seen && l != p.Leader:
				return fmt.Sprintf("partition %d: leader %d or %d", p.Partition, l, p.Leader)
			}
			leaders[p.Partition] = p.Leader
		}
	}
	return ""
}

// leaderOf returns the current leader of topic/partition per metadata,
// or -1.
func (c *fiCluster) leaderOf(topic string, partition int32) int32 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := c.admin().Metadata(ctx, topic)
	if err != nil {
		return -1
	}
	p, ok := md.Topics[topic].Partitions[partition]
	if !ok || p.Err != nil {
		return -1
	}
	return p.Leader
}

func (c *fiCluster) restart(node int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := c.procs[node-1].Restart(ctx); err != nil {
		c.fatalf("restart broker %d: %v", node, err)
	}
}

// checkReplicas reads each broker's copy of every partition of topic
// and fails the test if two differ below the high watermark.
func (c *fiCluster) checkReplicas(ctx context.Context, topic string, partitions int32) {
	c.t.Helper()
	for part := range partitions {
		var reps []history.Replica
		var hw int64
		for i, p := range c.kafka {
			r, h, err := history.ReadReplica(ctx, p.Addr(), int32(i+1), topic, part)
			if err != nil {
				c.fatalf("%v", err)
			}
			reps = append(reps, r)
			hw = max(hw, h)
		}
		if bad := history.CompareReplicas(topic, part, hw, reps); len(bad) > 0 {
			c.fatalf("replicas of %s/%d differ below HW %d: %v", topic, part, hw, bad)
		}
		c.t.Logf("replicas of %s/%d agree below HW %d (%d, %d, %d records)", topic, part, hw, len(reps[0].Records), len(reps[1].Records), len(reps[2].Records))
	}
}

// waitProgress waits for n more acknowledged sends, failing with every
// broker's output if the load is stuck.
func (c *fiCluster) waitProgress(l *history.Load, n int64) {
	c.t.Helper()
	want := l.Acked() + n
	deadline := time.Now().Add(90 * time.Second)
	for l.Acked() < want {
		if time.Now().After(deadline) {
			c.fatalf("load stuck at %d acked (%d failed), want %d", l.Acked(), l.Failed(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The RF-3 campaign (issue 14): three broker processes, a topic of
// replication factor 3 with min.insync.replicas=2, idempotent acks=all
// producers and a consumer, and faults one after another, at random: a
// partition leader SIGKILLed and restarted, a broker paused (shorter or
// longer than its session timeout), a broker isolated from the others
// and from clients, a partition {n} | {the other two} with clients still
// reaching n, one-way links (a broker, or one pair, that sends and does
// not hear, or the reverse), and latency on a broker's links; the cuts
// last 1-5 s. The load must make progress after each fault; at the end
// every acknowledged record is read back once at its offset, nothing a
// consumer read is gone, and the brokers' copies agree below the high
// watermark.
// RUNNEL_FAULT_RUNS sets the number of faults (default 6, each kind
// once).
func TestClusterCampaign(t *testing.T) {
	runs := faultRuns(t, 6)
	rng := faultRand(t)
	c := startFICluster(t)
	const topic, parts = "rf3", 3
	c.createRF3(topic, parts)

	var rec history.Recorder
	load, err := history.StartLoad(history.LoadConfig{
		Brokers:    c.seeds(),
		Topic:      topic,
		Acks:       -1,
		Idempotent: true,
		Producers:  2,
		Consume:    true,
		ClientOpts: quickRecovery,
	}, &rec)
	if err != nil {
		c.fatalf("%v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			load.Stop(0)
		}
	}()

	faults := []string{"kill-leader", "pause", "isolate", "partition", "one-way", "delay"}
	count := map[string]int{}
	for i := 0; i < runs; i++ {
		c.waitProgress(load, 50+rng.Int64N(300))
		// Every kind once first, so a short run has them all.
		fault := faults[i%len(faults)]
		if i >= len(faults) {
			fault = faults[rng.IntN(len(faults))]
		}
		count[fault]++
		node := 1 + rng.IntN(3)
		// Cuts last either side of the 3 s session timeout and the 4 s
		// replica lag: a stall, or a broker fenced and followers dropped
		// from the ISR while it lasts.
		hold := time.Duration(1000+rng.IntN(4000)) * time.Millisecond
		var what string
		switch fault {
		case "kill-leader":
			if l := int(c.leaderOf(topic, rng.Int32N(parts))); l >= 1 {
				node = l
			}
			if err := c.procs[node-1].Kill(); err != nil {
				c.fatalf("%v", err)
			}
			// Down long enough, sometimes, for its leaderships to move.
			down := time.Duration(rng.IntN(4000)) * time.Millisecond
			time.Sleep(down) // the fault's length
			c.restart(node)
			what = fmt.Sprintf("broker %d killed for %v", node, down)
		case "pause":
			p := c.procs[node-1]
			if err := p.Pause(); err != nil {
				c.fatalf("%v", err)
			}
			hold = time.Duration(200+rng.IntN(4800)) * time.Millisecond
			time.Sleep(hold) // the fault's length
			if err := p.Resume(); err != nil {
				c.fatalf("%v", err)
			}
			what = fmt.Sprintf("broker %d paused for %v", node, hold)
		case "isolate":
			// Cut off from the other brokers both ways and from clients.
			out, in := c.peerProxies(node)
			for _, p := range append(append(out, in...), c.kafka[node-1]) {
				p.Cut()
			}
			time.Sleep(hold) // the fault's length
			c.healAll()
			what = fmt.Sprintf("broker %d isolated for %v", node, hold)
		case "partition":
			// {node} | {the other two}: clients still reach the minority,
			// whose leaderships must move to the majority, and whose
			// acks=all produces must fail rather than be acknowledged.
			out, in := c.peerProxies(node)
			for _, p := range append(out, in...) {
				p.Cut()
			}
			time.Sleep(hold) // the fault's length
			c.healAll()
			what = fmt.Sprintf("partition {%d} | the others for %v", node, hold)
		case "one-way":
			deaf := rng.IntN(2) == 0
			if rng.IntN(2) == 0 {
				// One link: node hears other (or not), not the reverse.
				other := 1 + (node+rng.IntN(2))%3
				toNode, fromNode := faultinject.Downstream, faultinject.Upstream
				if !deaf {
					toNode, fromNode = fromNode, toNode
				}
				for _, p := range c.links[node-1][other-1].proxies() {
					p.Drop(toNode)
				}
				for _, p := range c.links[other-1][node-1].proxies() {
					p.Drop(fromNode)
				}
				what = fmt.Sprintf("broker %d hears %d, sends it nothing", node, other)
				if deaf {
					what = fmt.Sprintf("broker %d sends to %d, hears nothing back", node, other)
				}
			} else {
				c.oneWay(node, deaf)
				what = fmt.Sprintf("broker %d mute to the others", node)
				if deaf {
					what = fmt.Sprintf("broker %d deaf to the others", node)
				}
			}
			time.Sleep(hold) // the fault's length
			c.healAll()
			what += fmt.Sprintf(" for %v", hold)
		case "delay":
			// Latency both ways on every link of one broker: acks=all
			// waits for its fetches, so the load must slow and go on.
			lat := time.Duration(20+rng.IntN(280)) * time.Millisecond
			out, in := c.peerProxies(node)
			for _, p := range append(out, in...) {
				p.Delay(faultinject.Upstream, lat)
				p.Delay(faultinject.Downstream, lat)
			}
			c.waitProgress(load, 20)
			c.healAll()
			what = fmt.Sprintf("broker %d's links delayed %v", node, lat)
		}
		t.Logf("fault %d: %s; %d acked, %d failed", i+1, what, load.Acked(), load.Failed())
	}
	c.waitProgress(load, 200)
	load.Stop(60 * time.Second)
	stopped = true

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c.waitISR(ctx, topic, 3)
	if err := history.ReadAll(ctx, &rec, c.seeds(), topic); err != nil {
		c.fatalf("%v", err)
	}
	rep := history.Check(rec.History(), history.Options{Idempotent: true})
	t.Logf("%d faults %v: %s", runs, count, rep.Summary())
	if err := rep.Err(); err != nil {
		c.fatalf("%v", err)
	}
	if rep.AckedAndRead == 0 || rep.AckedAndRead != rep.Acked {
		c.fatalf("read back %d of %d acknowledged", rep.AckedAndRead, rep.Acked)
	}
	c.checkReplicas(ctx, topic, parts)
}

// acks=1 lets a leader answer before its followers have the batch, and
// the checker must catch what that loses. Both followers of a one-
// partition topic are paused for less than the session timeout and the
// replica lag (so they stay in the ISR and are not fenced); the leader
// keeps acknowledging acks=1 sends; then it is SIGKILLed and a follower,
// behind, is elected. The records acknowledged while the followers were
// frozen are lost, and reported; the loss is bounded: nothing below the
// high watermark read before the fault (every replica had it) is lost.
func TestClusterAcksOneLossReported(t *testing.T) {
	c := startFICluster(t)
	const topic, maxBuffered = "acks1", 200
	c.createRF3(topic, 1)

	var rec history.Recorder
	load, err := history.StartLoad(history.LoadConfig{
		Brokers:     c.seeds(),
		Topic:       topic,
		Acks:        1,
		Producers:   1,
		MaxBuffered: maxBuffered,
		ClientOpts:  quickRecovery,
	}, &rec)
	if err != nil {
		c.fatalf("%v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			load.Stop(0)
		}
	}()
	c.waitProgress(load, 300)

	leader := int(c.leaderOf(topic, 0))
	if leader < 1 {
		c.fatalf("no leader of %s", topic)
	}
	var followers []*faultinject.Process
	for i, p := range c.procs {
		if i+1 != leader {
			followers = append(followers, p)
		}
	}
	// Every record below the high watermark is on both followers: the
	// loss acks=1 allows is bounded by it. Wait until it has moved, so
	// the bound says something.
	var hw int64
	for hw == 0 {
		hwCtx, hwCancel := context.WithTimeout(context.Background(), 10*time.Second)
		ends, err := c.admin().ListEndOffsets(hwCtx, topic)
		hwCancel()
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			c.fatalf("%v", err)
		}
		end, _ := ends.Lookup(topic, 0)
		hw = end.Offset
		c.waitProgress(load, 10)
	}
	for _, p := range followers {
		if err := p.Pause(); err != nil {
			c.fatalf("%v", err)
		}
	}
	before := load.Acked()
	// Sends acknowledged by the leader alone, well past what was in
	// flight at the pause; well inside the 3 s session timeout and 4 s
	// replica lag.
	c.waitProgress(load, 10*maxBuffered)
	if err := c.procs[leader-1].Kill(); err != nil {
		c.fatalf("%v", err)
	}
	// Whatever was acknowledged after this point could only have been
	// acknowledged by another leader.
	window := load.Acked() - before
	for _, p := range followers {
		if err := p.Resume(); err != nil {
			c.fatalf("%v", err)
		}
	}
	c.waitProgress(load, 200) // a new leader answers
	c.restart(leader)
	c.waitProgress(load, 100)
	load.Stop(60 * time.Second)
	stopped = true

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c.waitISR(ctx, topic, 3)
	if err := history.ReadAll(ctx, &rec, c.seeds(), topic); err != nil {
		c.fatalf("%v", err)
	}
	rep := history.Check(rec.History(), history.Options{})
	t.Logf("acks=1, leader killed with its followers frozen: high watermark %d before the fault, %d acknowledged while frozen; %s", hw, window, rep.Summary())
	if len(rep.Lost) == 0 || rep.Err() == nil {
		c.fatalf("no loss reported after %d acks=1 sends only the killed leader had", window)
	}
	// The loss is bounded by what the followers had: nothing below the
	// high watermark taken before the pause may be lost. A count bound
	// by the sends acknowledged while frozen would not hold: acks=1
	// answers before the followers fetch, so sends acknowledged just
	// before the pause may still be on the leader alone (CI saw 3,000
	// lost against 2,800 acknowledged while frozen, maxBuffered more).
	// How many of the exposed sends reached the followers anyway is up
	// to timing (a fetch response already in a frozen follower's socket
	// is read when it resumes), so no lower bound beyond "some" holds.
	for _, a := range rep.Lost {
		if a.Offset < hw {
			c.fatalf("lost below the high watermark %d, which the followers had: %v", hw, a)
		}
	}
	if len(rep.Inconsistent) != 0 || len(rep.Gone) != 0 || len(rep.Duplicates) != 0 {
		c.fatalf("loss reported as something else: %v", rep.Err())
	}
	// The old leader truncated its tail: the copies agree again.
	c.checkReplicas(ctx, topic, 1)
}

// A partition {leader} | {the other two} while clients still reach both
// sides: the broker on the minority side cannot heartbeat to a controller
// nor be fetched from, so the majority fences it (Metadata stops listing
// it) and elects a leader of its own, which acknowledges acks=all writes; a client that reaches only
// the minority gets no acknowledgement from it. Healed, the old leader
// follows and the copies agree. The partition must cut the minority's
// own connections out, not only the ones into it: with those up it would
// keep heartbeating and stay leader.
func TestClusterPartitionMinority(t *testing.T) {
	c := startFICluster(t)
	const topic = "split"
	c.createRF3(topic, 1)
	old := int(c.leaderOf(topic, 0))
	if old < 1 {
		c.fatalf("no leader of %s", topic)
	}
	var majority []int
	for n := 1; n <= 3; n++ {
		if n != old {
			majority = append(majority, n)
		}
	}

	// The raw Produce the minority side gets below is one the leader
	// acknowledges while it is whole.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// majCl asks the majority side.
	majCl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(c.kafka[majority[0]-1].Addr()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(topic),
	}, quickRecovery...)...)
	if err != nil {
		c.fatalf("%v", err)
	}
	defer majCl.Close()
	// (Retried while the leader's own metadata may still lag behind
	// the broker that answered waitISR last.)
	for {
		code, err := produceRaw(ctx, majCl, old, topic, "whole")
		if err == nil && code == 0 {
			break
		}
		if ctx.Err() != nil || (err == nil && !kerr.IsRetriable(kerr.ErrorForCode(code))) {
			c.fatalf("acks=all produce to broker %d before the partition: %v %v", old, err, kerr.ErrorForCode(code))
		}
		time.Sleep(50 * time.Millisecond)
	}

	out, in := c.peerProxies(old)
	for _, p := range append(out, in...) {
		p.Cut()
	}
	healed := false
	defer func() {
		if !healed {
			c.healAll()
		}
	}()

	// The majority's view, asked of one of its brokers directly.
	// It fences the minority broker (whose heartbeats no longer reach a
	// controller) and elects another leader.
	var leader int32 = -1
	fenced := false
	for leader < 1 || int(leader) == old || !fenced {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, majCl.Broker(majority[0]))
		if err == nil && len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 {
			leader = resp.Topics[0].Partitions[0].Leader
			fenced = !slices.ContainsFunc(resp.Brokers, func(b kmsg.MetadataResponseBroker) bool { return int(b.NodeID) == old })
		}
		if ctx.Err() != nil {
			c.fatalf("the majority kept broker %d, cut off from it, live (%v) or leader (leader %d)", old, !fenced, leader)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("partition {%d} | %v: the majority elected broker %d", old, majority, leader)
	if err := majCl.ProduceSync(ctx, &kgo.Record{Value: []byte("majority")}).FirstErr(); err != nil {
		c.fatalf("acks=all produce on the majority side: %v", err)
	}

	// A client that reaches only the minority broker sends it an acks=all
	// Produce: it must not be acknowledged (the broker cannot know its
	// followers have the batch, and it has a leader elsewhere).
	onlyOld := c.kafka[old-1].Addr()
	minCl, err := kgo.NewClient(
		kgo.SeedBrokers(onlyOld),
		kgo.Dialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != onlyOld {
				return nil, fmt.Errorf("test: %s is on the other side", addr)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}),
	)
	if err != nil {
		c.fatalf("%v", err)
	}
	defer minCl.Close()
	code, err := produceRaw(ctx, minCl, old, topic, "minority")
	if err != nil {
		c.fatalf("produce to broker %d: %v", old, err)
	}
	if code == 0 {
		c.fatalf("broker %d, cut off from the others, acknowledged an acks=all write", old)
	}
	t.Logf("acks=all on the minority side: %v", kerr.ErrorForCode(code))

	c.healAll()
	healed = true
	c.waitISR(ctx, topic, 3)
	c.checkReplicas(ctx, topic, 1)
}

// produceRaw sends one record to topic/0 on broker node alone, with
// acks=all and a 5 s timeout, and returns the partition's error code.
func produceRaw(ctx context.Context, cl *kgo.Client, node int, topic, value string) (int16, error) {
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err == nil {
		err = td.Error()
	}
	if err != nil {
		return 0, err
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, td[topic].ID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = oneRecordBatch([]byte(value))
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(node))
	if err != nil {
		return 0, err
	}
	return resp.Topics[0].Partitions[0].ErrorCode, nil
}

// oneRecordBatch is a RecordBatch v2 of one record with value and no key,
// from no producer id, as a raw Produce carries it.
func oneRecordBatch(value []byte) []byte {
	var rec []byte
	rec = append(rec, 0)               // attributes
	rec = binary.AppendVarint(rec, 0)  // timestamp delta
	rec = binary.AppendVarint(rec, 0)  // offset delta
	rec = binary.AppendVarint(rec, -1) // no key
	rec = binary.AppendVarint(rec, int64(len(value)))
	rec = append(rec, value...)
	rec = binary.AppendVarint(rec, 0) // no headers
	b := make([]byte, 61, 61+10+len(rec))
	b = binary.AppendVarint(b, int64(len(rec)))
	b = append(b, rec...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12)) // batch length
	b[16] = 2                                            // magic
	now := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint64(b[27:], now)        // first timestamp
	binary.BigEndian.PutUint64(b[35:], now)        // max timestamp
	binary.BigEndian.PutUint64(b[43:], ^uint64(0)) // producer id -1
	binary.BigEndian.PutUint16(b[51:], 0xffff)     // producer epoch -1
	binary.BigEndian.PutUint32(b[53:], 0xffffffff) // base sequence -1
	binary.BigEndian.PutUint32(b[57:], 1)          // records
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}
