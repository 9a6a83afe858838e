package broker

import (
	"errors"
	"fmt"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// Limits on what one client can make the broker hold. Each mirrors a Kafka
// broker property (see the Config fields of the same names):
//
//   - max.broker.partitions: partitions created by CreateTopics,
//     CreatePartitions and auto-creation (this file);
//   - socket.request.max.bytes, queued.max.request.bytes,
//     queued.max.requests, connections.max.idle.ms and the request read
//     timeout: what a connection may buffer and for how long (conn.go,
//     budget.go);
//   - message.max.bytes: a batch's size, compressed and decompressed
//     (package log's produce validation);
//   - a Fetch's MaxWait, capped at FetchMaxWait (01_fetch.go).

// Sentinels for partition limits, mapped to Kafka codes by errorCode.
var (
	// errTooManyPartitions: one topic asks for more partitions than a
	// broker may hold (INVALID_PARTITIONS).
	errTooManyPartitions = fmt.Errorf("%w: more than max.broker.partitions", meta.ErrInvalidPartitions)
	// errPartitionCapacity: the partitions asked for would take the
	// cluster past max.broker.partitions per broker (POLICY_VIOLATION).
	errPartitionCapacity = errors.New("broker: partition limit reached")
)

// partitionBudget tracks, while one request is served, how many partition
// replicas the cluster may still take under max.broker.partitions per
// registered broker. It is a check made before the metadata change, not
// inside it: two requests racing each other can pass it together, so the
// bound may be overshot by what one request may create, never more.
type partitionBudget struct {
	limit     int32 // max.broker.partitions
	remaining int64 // replicas the cluster may still take
}

func (b *Broker) partitionBudget() *partitionBudget {
	cl := b.meta.Cluster()
	var used int64
	for _, t := range cl.Topics {
		for _, p := range t.Partitions {
			used += int64(len(p.Replicas))
		}
	}
	brokers := int64(max(len(cl.Brokers), 1))
	return &partitionBudget{
		limit:     b.cfg.MaxBrokerPartitions,
		remaining: int64(b.cfg.MaxBrokerPartitions)*brokers - used,
	}
}

// check reports whether a topic may grow to total partitions from have,
// each with rf replicas.
func (pb *partitionBudget) check(topic string, have, total int32, rf int16) error {
	if total > pb.limit {
		return fmt.Errorf("%w: topic %s asks for %d partitions, max.broker.partitions is %d", errTooManyPartitions, topic, total, pb.limit)
	}
	need := int64(total-have) * int64(max(rf, 1))
	if need > pb.remaining {
		return fmt.Errorf("%w: topic %s needs %d more partition replicas, %d remain under max.broker.partitions=%d", errPartitionCapacity, topic, need, max(pb.remaining, 0), pb.limit)
	}
	return nil
}

// take records that a checked growth went ahead.
func (pb *partitionBudget) take(have, total int32, rf int16) {
	pb.remaining -= int64(total-have) * int64(max(rf, 1))
}
