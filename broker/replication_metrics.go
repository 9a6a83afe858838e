package broker

import (
	"slices"
	"strconv"

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
