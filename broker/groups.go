package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runnel-dev/runnel/broker/internal/coordinator"
	"github.com/runnel-dev/runnel/broker/internal/group"
	"github.com/runnel-dev/runnel/broker/internal/log"
	"github.com/runnel-dev/runnel/broker/internal/log/producer"
	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
)

// offsetsTopic is the compacted internal topic that holds committed
// offsets and group metadata.
const offsetsTopic = "__consumer_offsets"

// startGroups creates __consumer_offsets when it is missing, starts the
// group coordinator, and has it load every partition of the topic this
// broker leads, now and whenever it becomes a leader of one
// (coordinator_placement.go). Groups answer COORDINATOR_LOAD_IN_PROGRESS
// until their partition is loaded.
func (b *Broker) startGroups(ctx context.Context) error {
	t, err := b.ensureInternalTopic(ctx, offsetsTopic, b.cfg.OffsetsTopicPartitions, b.cfg.OffsetsTopicReplicationFactor,
		// offsets.topic.segment.bytes. Until the log compacts, time
		// retention must not delete committed offsets; the coordinator
		// expires them itself (offsets.retention.minutes).
		map[string]string{"cleanup.policy": "compact", "segment.bytes": "104857600", "retention.ms": "-1"})
	if err != nil {
		return err
	}
	delay := b.cfg.GroupInitialRebalanceDelay
	if delay < 0 {
		delay = 0
	}
	coord, err := group.New(group.Config{
		Partitions:                    int32(len(t.Partitions)),
		InitialRebalanceDelay:         delay,
		MinSessionTimeout:             b.cfg.GroupMinSessionTimeout,
		MaxSessionTimeout:             b.cfg.GroupMaxSessionTimeout,
		MaxSize:                       b.cfg.GroupMaxSize,
		OffsetsRetention:              b.cfg.OffsetsRetention,
		OffsetsRetentionCheckInterval: b.cfg.OffsetsRetentionCheckInterval,
		PartitionExists: func(topic string, partition int32) bool {
			t := b.meta.Cluster().Topics[topic]
			return t != nil && partition >= 0 && int(partition) < len(t.Partitions)
		},
		Clock:  coordinator.RealClock(b.cfg.Now),
		Logger: b.logger.With("component", "group"),
	})
	if err != nil {
		return err
	}
	b.groups = coord
	b.placement.installGroups(coord)
	return nil
}

// WaitGroupsLoaded blocks until the group coordinator has loaded every
// __consumer_offsets partition this broker leads, or ctx ends.
func (b *Broker) WaitGroupsLoaded(ctx context.Context) error { return b.groups.WaitLoaded(ctx) }

// offsetsPartition is a __consumer_offsets partition as the coordinator
// writes and replays it.
type offsetsPartition struct{ p *partition }

func (o offsetsPartition) Append(batch []byte) (func(context.Context) error, error) {
	o.sequence(batch)
	res, err := o.p.append(batch)
	if err != nil {
		return nil, err
	}
	end := res.LastOffset + 1
	return func(ctx context.Context) error {
		if !o.p.waitHW(ctx, end) {
			if err := ctx.Err(); err != nil {
				return err
			}
			return errors.New("broker: partition closed before the write was durable")
		}
		return nil
	}, nil
}

// sequence numbers a transactional offset commit, which the group
// coordinator writes with no sequence (as Kafka's does), so the log's
// producer checks take it: the sequence after the producer's last batch
// at its epoch, or 0 at a new epoch. The coordinator is the partition's
// only writer and appends under its shard lock, so nothing else moves the
// producer in between.
func (o offsetsPartition) sequence(batch []byte) {
	h, err := recordbatch.ParseHeader(batch)
	if err != nil || !h.Transactional() || h.BaseSequence != -1 {
		return
	}
	seq := int32(0)
	if e, ok := o.p.log.ProducerEntry(h.ProducerID); ok && e.Epoch == h.ProducerEpoch {
		if bs := e.Batches(); len(bs) > 0 {
			seq = producer.NextSeq(bs[len(bs)-1].LastSeq)
		}
	}
	binary.BigEndian.PutUint32(batch[recordbatch.OffBaseSequence:], uint32(seq))
	recordbatch.SetCRC(batch)
}

// AppendMarker writes a transaction marker through the partition's
// producer state (group.MarkerPartition).
func (o offsetsPartition) AppendMarker(ctx context.Context, m group.TxnMarker) error {
	_, err := o.p.appendMarker(ctx, log.Marker{ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch, Commit: m.Commit, CoordinatorEpoch: m.CoordinatorEpoch, TV2: m.TV2})
	return err
}

func (o offsetsPartition) Read(offset int64, maxBytes int32) ([]byte, error) {
	rr, err := o.p.log.Read(offset, maxBytes, o.p.highWatermark())
	return rr.Records, err
}

func (o offsetsPartition) StartOffset() int64   { return o.p.log.StartOffset() }
func (o offsetsPartition) HighWatermark() int64 { return o.p.highWatermark() }

// clientHost is a connection's peer address as Kafka reports a member's
// host: a slash and the IP.
func (c *conn) clientHost() string {
	host, _, err := net.SplitHostPort(c.nc.RemoteAddr().String())
	if err != nil {
		return "/" + c.nc.RemoteAddr().String()
	}
	return "/" + host
}

// groupCollector reports consumer group lag and membership at scrape
// time.
type groupCollector struct{ b *Broker }

var (
	descGroupLag = prometheus.NewDesc("runnel_broker_group_lag",
		"A consumer group's lag on a partition: the partition's high watermark minus the group's committed offset.",
		[]string{"group", "topic", "partition"}, nil)
	descGroupMembers = prometheus.NewDesc("runnel_broker_group_members",
		"Members of a consumer group.", []string{"group"}, nil)
)

func (c *groupCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descGroupLag
	ch <- descGroupMembers
}

func (c *groupCollector) Collect(ch chan<- prometheus.Metric) {
	if c.b.groups == nil {
		return
	}
	for _, st := range c.b.groups.Stats() {
		ch <- prometheus.MustNewConstMetric(descGroupMembers, prometheus.GaugeValue, float64(st.Members), st.Group)
		for topic, parts := range st.Offsets {
			for idx, committed := range parts {
				p := c.b.parts.get(topic, idx)
				if p == nil {
					continue
				}
				lag := p.highWatermark() - committed
				ch <- prometheus.MustNewConstMetric(descGroupLag, prometheus.GaugeValue, float64(lag), st.Group, topic, strconv.Itoa(int(idx)))
			}
		}
	}
}
