package broker

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// Replication throttles, as Kafka's replication quotas (KIP-73), which
// kafka-reassign-partitions --throttle sets so that moving a replica does
// not starve clients of disk and network.
//
// Four dynamic configs, kept in the Raft metadata like every other:
//
//	leader.replication.throttled.rate      broker (its id, or "" for every broker): bytes/s
//	follower.replication.throttled.rate    broker: bytes/s
//	leader.replication.throttled.replicas  topic: "partition:broker,..." or "*"
//	follower.replication.throttled.replicas topic: the same
//
// A broker applies its own rate, else the cluster default, else none
// (Kafka's Long.MAX_VALUE), and only to the replicas the topic lists
// under this broker's id ("*" lists every replica). As leader it holds
// back the data of a listed partition from the fetch of a follower
// outside the ISR while the bytes it has sent of listed partitions are
// over the leader rate; as follower it leaves a listed partition out of
// its fetch, while it is outside the ISR, while the bytes it has fetched
// of listed partitions are over the follower rate. Each side measures
// its rate as client quotas do (rateSensor, quota.go), over
// ReplicationQuotaConfig's windows. Replicas in the ISR are never held
// back, so a throttle cannot shrink the ISR or hold up acks=all, and
// partitions not listed are not slowed at all. kafka-reassign-partitions
// --verify deletes the four configs once the move is done.

// Names of the replication throttle configs.
const (
	leaderThrottledRate       = "leader.replication.throttled.rate"
	followerThrottledRate     = "follower.replication.throttled.rate"
	leaderThrottledReplicas   = "leader.replication.throttled.replicas"
	followerThrottledReplicas = "follower.replication.throttled.replicas"
)

// throttleRateDefs are the dynamic broker configs that are not topic
// defaults: the replication throttle rates, bytes per second, Kafka's
// default being no throttle (Long.MAX_VALUE).
var throttleRateDefs = map[string]topicConfigDef{
	leaderThrottledRate:   {kind: kindLong, min: 0, def: longMax},
	followerThrottledRate: {kind: kindLong, min: 0, def: longMax},
}

// ReplicationQuotaConfig is the window the replication throttles measure
// rates over. A throttled follower may catch up by about the rate times
// (WindowNum-1)*WindowSize in a burst before it is held to the rate.
type ReplicationQuotaConfig struct {
	// WindowNum is replication.quota.window.num: the windows a rate is
	// measured over. Default 11.
	WindowNum int
	// WindowSize is replication.quota.window.size.seconds, as a duration
	// (Runnel accepts less than a second). Default 1s.
	WindowSize time.Duration
}

func (c *ReplicationQuotaConfig) ensureDefaults() {
	if c.WindowNum == 0 {
		c.WindowNum = 11
	}
	if c.WindowSize == 0 {
		c.WindowSize = time.Second
	}
}

func (c *ReplicationQuotaConfig) validate() []error {
	var errs []error
	if c.WindowNum < 1 {
		errs = append(errs, fmt.Errorf("broker: replication.quota.window.num %d must be at least 1", c.WindowNum))
	}
	if c.WindowSize < time.Millisecond {
		errs = append(errs, fmt.Errorf("broker: replication.quota.window.size %v must be at least 1ms", c.WindowSize))
	}
	return errs
}

func (c *ReplicationQuotaConfig) string() string {
	return fmt.Sprintf("replication.quota.window.num=%d\nreplication.quota.window.size=%v\n", c.WindowNum, c.WindowSize)
}

// throttledReplicas is a parsed leader or follower
// .replication.throttled.replicas value.
type throttledReplicas struct {
	// all is "*": every replica of the topic.
	all bool
	// brokers lists, by partition, the brokers whose replicas are
	// throttled.
	brokers map[int32][]int32
}

// parseThrottledReplicas parses a throttled replica list: "*", or
// "partition:broker" pairs separated by commas (spaces around items and
// empty items are allowed, as Kafka allows them).
func parseThrottledReplicas(name, v string) (throttledReplicas, error) {
	if strings.TrimSpace(v) == "*" {
		return throttledReplicas{all: true}, nil
	}
	bad := func(item, why string) error {
		return fmt.Errorf("invalid value %s for configuration %s: %q %s; the value must be the literal '*' or a list of replicas in the format [partitionId]:[brokerId],[partitionId]:[brokerId],...", v, name, item, why)
	}
	r := throttledReplicas{brokers: make(map[int32][]int32)}
	for _, item := range splitList(v) {
		ps, bs, ok := strings.Cut(item, ":")
		if !ok {
			return r, bad(item, "has no ':'")
		}
		p, err := parseReplicaID(ps)
		if err != nil {
			return r, bad(item, "has a bad partition id: "+err.Error())
		}
		b, err := parseReplicaID(bs)
		if err != nil {
			return r, bad(item, "has a bad broker id: "+err.Error())
		}
		r.brokers[p] = append(r.brokers[p], b)
	}
	return r, nil
}

// parseReplicaID parses a partition or broker id of a throttled replica
// list: digits only, as Kafka's, within int32.
func parseReplicaID(s string) (int32, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a non-negative number", s)
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return int32(n), nil
}

// checkThrottledReplicas validates a throttled replica list.
func checkThrottledReplicas(name, v string) error {
	_, err := parseThrottledReplicas(name, v)
	return err
}

// has reports whether broker's replica of partition is listed.
func (r throttledReplicas) has(partition, broker int32) bool {
	if r.all {
		return true
	}
	for _, b := range r.brokers[partition] {
		if b == broker {
			return true
		}
	}
	return false
}

// throttleView is what the replication throttles are for this broker at
// one metadata view, parsed once per view.
type throttleView struct {
	cl *meta.Cluster
	// leaderRate and followerRate are the bounds in bytes per second,
	// +Inf when there is none.
	leaderRate, followerRate float64
	// leader and follower hold the lists of the topics that set them.
	leader, follower map[string]throttledReplicas
}

// newThrottleView reads the throttles in force for broker self.
func newThrottleView(cl *meta.Cluster, self int32) *throttleView {
	v := &throttleView{cl: cl, leader: map[string]throttledReplicas{}, follower: map[string]throttledReplicas{}}
	own := cl.BrokerConfigs[strconv.Itoa(int(self))]
	rate := func(name string) float64 {
		s, ok := own[name]
		if !ok {
			s, ok = cl.BrokerConfigs[""][name]
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if !ok || err != nil || n == math.MaxInt64 {
			// Validated when set: an error here is a value from before
			// validation, taken as no throttle rather than a stall.
			return math.Inf(1)
		}
		return float64(n)
	}
	v.leaderRate, v.followerRate = rate(leaderThrottledRate), rate(followerThrottledRate)
	for name, t := range cl.Topics {
		if s, ok := t.Configs[leaderThrottledReplicas]; ok {
			if r, err := parseThrottledReplicas(leaderThrottledReplicas, s); err == nil {
				v.leader[name] = r
			}
		}
		if s, ok := t.Configs[followerThrottledReplicas]; ok {
			if r, err := parseThrottledReplicas(followerThrottledReplicas, s); err == nil {
				v.follower[name] = r
			}
		}
	}
	return v
}

// inSync reports whether replica is in the partition's committed ISR.
func (v *throttleView) inSync(topic string, partition, replica int32) bool {
	t := v.cl.Topics[topic]
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return false
	}
	for _, id := range t.Partitions[partition].ISR {
		if id == replica {
			return true
		}
	}
	return false
}

// replicationThrottles are a broker's two replication quotas, leader and
// follower side (Kafka's ReplicationQuotaManager), and the throttles in
// force. Safe for concurrent use.
type replicationThrottles struct {
	self     int32
	cluster  func() *meta.Cluster
	leader   *replicationQuota
	follower *replicationQuota
	// view caches the throttles parsed from the newest metadata view.
	view atomic.Pointer[throttleView]
}

func newReplicationThrottles(cfg *Config, cluster func() *meta.Cluster) *replicationThrottles {
	q := cfg.ReplicationQuota
	return &replicationThrottles{
		self:     cfg.NodeID,
		cluster:  cluster,
		leader:   newReplicationQuota(cfg.Now, q.WindowNum, q.WindowSize),
		follower: newReplicationQuota(cfg.Now, q.WindowNum, q.WindowSize),
	}
}

// current is the throttles in force at the newest metadata view.
func (t *replicationThrottles) current() *throttleView {
	cl := t.cluster()
	if v := t.view.Load(); v != nil && v.cl == cl {
		return v
	}
	v := newThrottleView(cl, t.self)
	t.view.Store(v)
	return v
}

// replicationQuota measures the rate of throttled replication bytes on
// one side, leader or follower.
type replicationQuota struct {
	now func() time.Time

	mu     sync.Mutex // guards the following
	sensor rateSensor
	// total is every throttled byte recorded, for the metrics.
	total int64
}

func newReplicationQuota(now func() time.Time, num int, size time.Duration) *replicationQuota {
	return &replicationQuota{now: now, sensor: rateSensor{num: num, size: size}}
}

// exceeded reports whether the rate is over bound, bytes per second: a
// throttled replica then waits. Like Kafka's it is checked before a
// fetch, so one fetch may overshoot the bound, and the next waits longer.
func (q *replicationQuota) exceeded(bound float64) bool {
	if math.IsInf(bound, 1) {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.sensor.rate(q.now()) > bound
}

// record adds n throttled bytes to the rate.
func (q *replicationQuota) record(n int64) {
	if n <= 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sensor.record(q.now(), float64(n))
	q.total += n
}

// read returns the bytes recorded so far and the rate now.
func (q *replicationQuota) read() (total int64, rate float64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.total, q.sensor.rate(q.now())
}

// replicaFetchThrottle applies one side's throttle to one replica fetch:
// which partitions to hold back, and the throttled bytes the fetch moved.
// A nil *replicaFetchThrottle throttles nothing.
type replicaFetchThrottle struct {
	v     *throttleView
	quota *replicationQuota
	bound float64
	list  map[string]throttledReplicas
	// self is the broker whose replicas the lists name: this broker.
	self int32
	// replica is the follower whose ISR membership exempts it.
	replica int32
	// bytes are the throttled bytes of the response being built.
	bytes int64
}

// leaderFetch is the leader side's throttle of a fetch from follower
// replica, nil when no topic has a leader throttle.
func (t *replicationThrottles) leaderFetch(replica int32) *replicaFetchThrottle {
	v := t.current()
	if len(v.leader) == 0 {
		return nil
	}
	return &replicaFetchThrottle{v: v, quota: t.leader, bound: v.leaderRate, list: v.leader, self: t.self, replica: replica}
}

// followerFetch is the follower side's throttle of this broker's next
// fetch, nil when no topic has a follower throttle.
func (t *replicationThrottles) followerFetch() *replicaFetchThrottle {
	v := t.current()
	if len(v.follower) == 0 {
		return nil
	}
	return &replicaFetchThrottle{v: v, quota: t.follower, bound: v.followerRate, list: v.follower, self: t.self, replica: t.self}
}

// throttled reports whether the partition's replica on this broker is
// listed: its bytes count towards the rate.
func (f *replicaFetchThrottle) throttled(topic string, partition int32) bool {
	if f == nil {
		return false
	}
	r, ok := f.list[topic]
	return ok && r.has(partition, f.self)
}

// hold reports whether the partition waits: listed, the replica outside
// the ISR, and the rate over its bound.
func (f *replicaFetchThrottle) hold(topic string, partition int32) bool {
	return f.throttled(topic, partition) && !f.v.inSync(topic, partition, f.replica) && f.quota.exceeded(f.bound)
}

// reset forgets the bytes counted so far: the fetch is built again.
func (f *replicaFetchThrottle) reset() {
	if f != nil {
		f.bytes = 0
	}
}

// count adds n bytes of the partition to the fetch's throttled bytes if
// it is listed.
func (f *replicaFetchThrottle) count(topic string, partition int32, n int) {
	if f.throttled(topic, partition) {
		f.bytes += int64(n)
	}
}

// record adds the fetch's throttled bytes to the rate, once it is sent
// or applied.
func (f *replicaFetchThrottle) record() {
	if f != nil {
		f.quota.record(f.bytes)
		f.bytes = 0
	}
}

// throttleRateEntries lists this broker's replication throttle rates as
// DescribeConfigs reports them: the one in force, with its synonyms this
// broker's own, the cluster default and Kafka's default.
func (b *Broker) throttleRateEntries(cl *meta.Cluster) []configEntry {
	var out []configEntry
	for _, name := range []string{leaderThrottledRate, followerThrottledRate} {
		var l []configEntry
		if v, ok := cl.BrokerConfigs[b.nodeName()][name]; ok {
			l = append(l, configEntry{name: name, value: v, source: configSourceDynamicBroker})
		}
		if v, ok := cl.BrokerConfigs[""][name]; ok {
			l = append(l, configEntry{name: name, value: v, source: configSourceDynamicDefaultBroker})
		}
		l = append(l, configEntry{name: name, value: throttleRateDefs[name].def, source: configSourceDefault})
		out = append(out, configEntry{name: name, value: l[0].value, source: l[0].source, synonyms: l})
	}
	return out
}

// Replication throttle metrics, after Kafka's
// kafka.server:type=LeaderReplication / FollowerReplication byte-rate:
//
//	runnel_broker_replication_throttled_bytes_total{side}  bytes of throttled replicas moved
//	runnel_broker_replication_throttled_byte_rate{side}    their rate now, as the throttle measures it
//
// side is "leader" (sent to followers) or "follower" (fetched).
var (
	descThrottledBytes = prometheus.NewDesc("runnel_broker_replication_throttled_bytes_total",
		"Bytes of replicas listed in leader/follower.replication.throttled.replicas this broker sent as leader or fetched as follower.", []string{"side"}, nil)
	descThrottledRate = prometheus.NewDesc("runnel_broker_replication_throttled_byte_rate",
		"Rate of those bytes in bytes per second, as the replication throttle measures it.", []string{"side"}, nil)
)

// throttleCollector reports the replication throttle metrics.
type throttleCollector struct{ t *replicationThrottles }

func (c *throttleCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descThrottledBytes
	ch <- descThrottledRate
}

func (c *throttleCollector) Collect(ch chan<- prometheus.Metric) {
	for side, q := range map[string]*replicationQuota{"leader": c.t.leader, "follower": c.t.follower} {
		total, rate := q.read()
		ch <- prometheus.MustNewConstMetric(descThrottledBytes, prometheus.CounterValue, float64(total), side)
		ch <- prometheus.MustNewConstMetric(descThrottledRate, prometheus.GaugeValue, rate, side)
	}
}
