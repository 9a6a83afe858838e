package broker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Replication health as Prometheus metrics, named after Kafka's JMX
// gauges (kafka.server:type=ReplicaManager and kafka.controller):
//
//	runnel_broker_under_replicated_partitions  UnderReplicatedPartitions
//	runnel_broker_under_min_isr_partitions     UnderMinIsrPartitionCount
//	runnel_broker_offline_partitions           OfflinePartitionsCount
//	runnel_broker_active_controller            ActiveControllerCount
//	runnel_broker_isr_shrinks_total            IsrShrinksPerSec
//	runnel_broker_isr_expands_total            IsrExpandsPerSec
//
// The partition counts are of the partitions this broker leads (as
// Kafka's leader-side gauges), except the offline count, which only the
// controller reports (the others report 0), so a sum over the cluster is
// the cluster's count. The gauges are computed from the metadata at
// scrape time; the rates count the ISR changes this broker's leaders
// asked the controller for and got (the controller's own, when it fences
// a broker, are not counted, as in Kafka).

var (
	descUnderReplicated = prometheus.NewDesc("runnel_broker_under_replicated_partitions",
		"Partitions led by this broker whose ISR is smaller than their replica list.", nil, nil)
	descUnderMinISR = prometheus.NewDesc("runnel_broker_under_min_isr_partitions",
		"Partitions led by this broker whose ISR is smaller than min.insync.replicas (acks=all produces fail).", nil, nil)
	descOffline = prometheus.NewDesc("runnel_broker_offline_partitions",
		"Partitions without a leader; reported by the controller only, 0 on the other brokers.", nil, nil)
	descActiveController = prometheus.NewDesc("runnel_broker_active_controller",
		"1 on the broker that is the controller, 0 elsewhere.", nil, nil)
)

// replicationCollector reports the replication gauges at scrape time.
type replicationCollector struct{ b *Broker }

func (c *replicationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descUnderReplicated
	ch <- descUnderMinISR
	ch <- descOffline
	ch <- descActiveController
}

func (c *replicationCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.b
	cl := b.meta.Cluster()
	self := b.cfg.NodeID
	controller := cl.ControllerID == self || !b.meta.Clustered()
	var under, underMin, offline int
	for _, t := range cl.Topics {
		minISR := -1 // read once per topic that has a partition led here
		for _, p := range t.Partitions {
			if p.Leader < 0 {
				offline++
			}
			if p.Leader != self {
				continue
			}
			if len(p.ISR) < len(p.TargetReplicas()) {
				under++
			}
			if minISR < 0 {
				minISR, _ = strconv.Atoi(b.topicConfigInForce(cl, t.Configs, "min.insync.replicas"))
			}
			if len(p.ISR) < minISR {
				underMin++
			}
		}
	}
	if !controller {
		offline = 0
	}
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	gauge(descUnderReplicated, under)
	gauge(descUnderMinISR, underMin)
	gauge(descOffline, offline)
	active := 0
	if controller {
		active = 1
	}
	gauge(descActiveController, active)
}

// isrChangeCounters count the ISR changes of the partitions this broker
// leads.
type isrChangeCounters struct {
	shrinks, expands prometheus.Counter
}

func newISRChangeCounters() isrChangeCounters {
	return isrChangeCounters{
		shrinks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "runnel_broker_isr_shrinks_total", Help: "ISR changes of partitions led here that removed a replica.",
		}),
		expands: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "runnel_broker_isr_expands_total", Help: "ISR changes of partitions led here that added a replica.",
		}),
	}
}

// observe counts one applied ISR change from before to after.
func (m isrChangeCounters) observe(before, after []int32) {
	if slices.ContainsFunc(before, func(r int32) bool { return !slices.Contains(after, r) }) {
		m.shrinks.Inc()
	}
	if slices.ContainsFunc(after, func(r int32) bool { return !slices.Contains(before, r) }) {
		m.expands.Inc()
	}
}

// ackWaitHistograms time how long Produce requests waited, after their
// append, for their acknowledgement: for acks=all the high watermark
// (every ISR member has the batches, fsynced), for acks=1 the leader's
// own fsync. A stall of the replication shows here and not in the
// handler's time.
type ackWaitHistograms struct {
	vec      *prometheus.HistogramVec
	all, one prometheus.Observer
}

func newAckWaitHistograms() ackWaitHistograms {
	vec := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "runnel_broker_produce_ack_wait_seconds",
		Help:    "Time a Produce request waited after its append for its acknowledgement (the high watermark for acks=all, the leader's fsync for acks=1), by acks.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"acks"})
	// Resolved once: the produce path observes without a label lookup.
	return ackWaitHistograms{vec: vec, all: vec.WithLabelValues("all"), one: vec.WithLabelValues("1")}
}

func (h ackWaitHistograms) observe(acks int16, d time.Duration) {
	if acks == 1 {
		h.one.Observe(d.Seconds())
	} else {
		h.all.Observe(d.Seconds())
	}
}

// slowAckWait is how long an acks=all wait on one partition may take
// before the leader logs what held its high watermark.
const slowAckWait = time.Second

// slowAckState describes a leader's replication for the log line of a
// slow acks=all wait, at most once per partition every slowAckLogEvery
// (a stall holds many requests): its HW and durable end, and each ISR
// follower's log end and time since its last fetch, the follower that
// lags being what holds the HW. ok is false when nothing is to be logged.
func (p *partition) slowAckState(now time.Time) (attrs []any, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rs == nil || now.Sub(p.slowAckLogged) < slowAckLogEvery {
		return nil, false
	}
	p.slowAckLogged = now
	var b strings.Builder
	for _, r := range p.rs.isr {
		f := p.rs.followers[r]
		if r == p.rs.self || f == nil {
			continue
		}
		fmt.Fprintf(&b, "%d: leo %d, last fetch %v ago, caught up %v ago; ", r, f.leo, now.Sub(f.lastFetch).Round(time.Millisecond), now.Sub(f.caughtUp).Round(time.Millisecond))
	}
	return []any{"hw", p.hw, "durable_end", p.durableEnd, "leader_leo", p.rs.leo, "isr", p.rs.isr, "followers", strings.TrimSuffix(b.String(), "; ")}, true
}

// slowAckLogEvery bounds the slow-wait log lines of a partition.
const slowAckLogEvery = 10 * time.Second

// committedISR is the ISR a leader last had committed, nil when it does
// not lead.
func (p *partition) committedISR() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rs == nil {
		return nil
	}
	return slices.Clone(p.rs.isr)
}
