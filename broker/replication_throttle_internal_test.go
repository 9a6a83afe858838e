package broker

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// Throttled replica lists: "*", or partition:broker pairs with spaces and
// empty items allowed; anything else is refused with Kafka's format in
// the message.
func TestParseThrottledReplicas(t *testing.T) {
	for _, tc := range []struct {
		v    string
		all  bool
		has  [][2]int32
		hasn [][2]int32
	}{
		{v: "*", all: true, has: [][2]int32{{0, 1}, {7, 9}}},
		{v: " * ", all: true},
		{v: "", hasn: [][2]int32{{0, 0}}},
		{v: "0:1,0:2,3:1", has: [][2]int32{{0, 1}, {0, 2}, {3, 1}}, hasn: [][2]int32{{3, 2}, {1, 1}}},
		{v: " 0 : 1 , ,2:3,", has: [][2]int32{{0, 1}, {2, 3}}, hasn: [][2]int32{{1, 0}}},
	} {
		r, err := parseThrottledReplicas(leaderThrottledReplicas, tc.v)
		if err != nil {
			t.Errorf("%q: %v", tc.v, err)
			continue
		}
		if r.all != tc.all {
			t.Errorf("%q: all=%t", tc.v, r.all)
		}
		for _, pb := range tc.has {
			if !r.has(pb[0], pb[1]) {
				t.Errorf("%q: partition %d broker %d not listed", tc.v, pb[0], pb[1])
			}
		}
		for _, pb := range tc.hasn {
			if r.has(pb[0], pb[1]) {
				t.Errorf("%q: partition %d broker %d listed", tc.v, pb[0], pb[1])
			}
		}
	}
	for _, v := range []string{"0", "0-1", "a:1", "0:b", "-1:2", "0:-2", "0:1:2", "**", "*,0:1", "99999999999:1", "0:1;1:2"} {
		err := checkThrottledReplicas(followerThrottledReplicas, v)
		if err == nil || !strings.Contains(err.Error(), "[partitionId]:[brokerId]") || !strings.Contains(err.Error(), followerThrottledReplicas) {
			t.Errorf("%q: %v; want an error naming the config and the format", v, err)
		}
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// A sender that sends a chunk whenever the quota is not exceeded, as a
// throttled follower fetches, is held to the rate on an injected clock:
// after the first burst (at most the rate times num-1 windows, plus one
// chunk, since the check comes before the send) it moves no more than
// rate × elapsed, and no less than that minus a chunk.
func TestReplicationQuotaHoldsToRate(t *testing.T) {
	for _, tc := range []struct {
		num       int
		size      time.Duration
		rate      float64
		chunk     int64
		tick      time.Duration
		simulated time.Duration
	}{
		{num: 11, size: time.Second, rate: 1 << 20, chunk: 1 << 20, tick: 10 * time.Millisecond, simulated: 60 * time.Second},
		{num: 2, size: time.Second, rate: 1 << 20, chunk: 1 << 20, tick: time.Millisecond, simulated: 20 * time.Second},
		{num: 3, size: 100 * time.Millisecond, rate: 50_000, chunk: 3_000, tick: time.Millisecond, simulated: 10 * time.Second},
	} {
		clk := &fakeClock{t: time.Unix(5000, 0)}
		q := newReplicationQuota(clk.now, tc.num, tc.size)
		var sent int64
		for elapsed := time.Duration(0); elapsed <= tc.simulated; elapsed += tc.tick {
			if !q.exceeded(tc.rate) {
				q.record(tc.chunk)
				sent += tc.chunk
			}
			secs := elapsed.Seconds()
			burst := tc.rate*(time.Duration(tc.num-1)*tc.size).Seconds() + float64(tc.chunk)
			if hi := tc.rate*secs + burst + 1; float64(sent) > hi {
				t.Fatalf("num %d size %v: sent %d by %v, more than rate × elapsed + burst = %.0f", tc.num, tc.size, sent, elapsed, hi)
			}
			if lo := tc.rate*secs - float64(tc.chunk) - 1; float64(sent) < lo {
				t.Fatalf("num %d size %v: sent %d by %v, less than rate × elapsed - chunk = %.0f", tc.num, tc.size, sent, elapsed, lo)
			}
			clk.advance(tc.tick)
		}
	}
}

// No bound is never exceeded; a bound of 0 lets one fetch through and
// then holds until the window forgets it, as Kafka's quota of 0 does.
func TestReplicationQuotaBounds(t *testing.T) {
	clk := &fakeClock{t: time.Unix(5000, 0)}
	q := newReplicationQuota(clk.now, 3, time.Second)
	q.record(math.MaxInt32)
	if q.exceeded(math.Inf(1)) {
		t.Fatal("no bound exceeded")
	}
	z := newReplicationQuota(clk.now, 3, time.Second)
	if z.exceeded(0) {
		t.Fatal("bound 0 exceeded before any byte")
	}
	z.record(1)
	if !z.exceeded(0) {
		t.Fatal("bound 0 not exceeded after a byte")
	}
	clk.advance(3 * time.Second)
	if z.exceeded(0) {
		t.Fatal("bound 0 still exceeded once the windows expired")
	}
}

// throttleCluster is metadata with broker 1's own leader rate, a cluster
// default follower rate, and topic "t" (partitions 0 and 1, ISR {1,2})
// listing broker 1's replica of partition 0 as leader-throttled and
// broker 3's as follower-throttled.
func throttleCluster() *meta.Cluster {
	return &meta.Cluster{
		BrokerConfigs: map[string]map[string]string{
			"1": {leaderThrottledRate: "1000"},
			"2": {leaderThrottledRate: "2000", followerThrottledRate: "9223372036854775807"},
			"":  {followerThrottledRate: "500"},
		},
		Topics: map[string]*meta.Topic{
			"t": {Name: "t", Partitions: []meta.Partition{
				{Index: 0, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}},
				{Index: 1, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}},
			}, Configs: map[string]string{leaderThrottledReplicas: "0:1,0:2", followerThrottledReplicas: "0:3"}},
			"u": {Name: "u", Partitions: []meta.Partition{{Index: 0, Leader: 1, Replicas: []int32{1, 3}, ISR: []int32{1}}}},
			"w": {Name: "w", Partitions: []meta.Partition{{Index: 0, Leader: 1, Replicas: []int32{1, 3}, ISR: []int32{1}}},
				Configs: map[string]string{followerThrottledReplicas: "*"}},
		},
	}
}

// Each broker takes its own rate, else the cluster default, else none.
func TestThrottleViewRates(t *testing.T) {
	cl := throttleCluster()
	for _, tc := range []struct {
		self             int32
		leader, follower float64
	}{
		{1, 1000, 500},
		{2, 2000, math.Inf(1)},
		{3, math.Inf(1), 500},
	} {
		v := newThrottleView(cl, tc.self)
		if v.leaderRate != tc.leader || v.followerRate != tc.follower {
			t.Errorf("broker %d: leader %v follower %v; want %v %v", tc.self, v.leaderRate, v.followerRate, tc.leader, tc.follower)
		}
	}
}

// The leader holds back a listed partition from a follower outside the
// ISR while its rate is over the bound, and nothing else; it counts the
// listed partitions' bytes, whoever fetched them. The follower side
// leaves out its own listed replicas the same way.
func TestReplicaFetchThrottleHold(t *testing.T) {
	clk := &fakeClock{t: time.Unix(5000, 0)}
	cl := throttleCluster()
	leader := &replicationThrottles{self: 1, cluster: func() *meta.Cluster { return cl }, leader: newReplicationQuota(clk.now, 2, time.Second), follower: newReplicationQuota(clk.now, 2, time.Second)}

	lt := leader.leaderFetch(3)
	for _, p := range []struct {
		topic string
		part  int32
	}{{"t", 0}, {"t", 1}, {"u", 0}} {
		if lt.hold(p.topic, p.part) {
			t.Errorf("%s-%d held under the rate", p.topic, p.part)
		}
	}
	lt.count("t", 0, 1500)
	lt.count("t", 1, 1<<20) // not listed: not counted
	lt.record()
	// 1500 bytes over the minimum 1s window: 1500/s, over 1000/s.
	if !leader.leaderFetch(3).hold("t", 0) {
		t.Error("t-0 not held from follower 3 over the rate")
	}
	if leader.leaderFetch(2).hold("t", 0) {
		t.Error("t-0 held from follower 2, in the ISR")
	}
	if leader.leaderFetch(3).hold("t", 1) || leader.leaderFetch(3).hold("u", 0) {
		t.Error("an unlisted partition held")
	}
	clk.advance(2 * time.Second)
	if leader.leaderFetch(3).hold("t", 0) {
		t.Error("t-0 still held once the window forgot the bytes")
	}
	// Reset drops what a pass counted before the fetch was built again.
	lt = leader.leaderFetch(3)
	lt.count("t", 0, 5000)
	lt.reset()
	lt.record()
	if leader.leaderFetch(3).hold("t", 0) {
		t.Error("bytes of a discarded pass counted")
	}

	// Broker 3 follows: t-0 is listed for it, and w's "*" lists every
	// replica; broker 1 lists no follower replica of t.
	follower := &replicationThrottles{self: 3, cluster: func() *meta.Cluster { return cl }, leader: newReplicationQuota(clk.now, 2, time.Second), follower: newReplicationQuota(clk.now, 2, time.Second)}
	ft := follower.followerFetch()
	ft.count("t", 0, 400)
	ft.count("w", 0, 400)
	ft.count("u", 0, 1<<20)
	ft.record()
	ft = follower.followerFetch()
	if !ft.hold("t", 0) || !ft.hold("w", 0) || ft.hold("t", 1) || ft.hold("u", 0) {
		t.Errorf("follower 3 over 500/s holds t-0 %t w-0 %t t-1 %t u-0 %t; want true true false false", ft.hold("t", 0), ft.hold("w", 0), ft.hold("t", 1), ft.hold("u", 0))
	}
	if leader.followerFetch().throttled("t", 0) {
		t.Error("broker 1's replica of t-0 follower-throttled; only broker 3's is listed")
	}

	// Without any list nothing is throttled, and no throttle is built.
	empty := &replicationThrottles{self: 1, cluster: func() *meta.Cluster { return &meta.Cluster{} }}
	if empty.leaderFetch(3) != nil || empty.followerFetch() != nil {
		t.Error("throttles built with nothing listed")
	}
	var none *replicaFetchThrottle
	none.reset()
	none.count("t", 0, 1)
	none.record()
	if none.hold("t", 0) {
		t.Error("nil throttle holds")
	}
}
