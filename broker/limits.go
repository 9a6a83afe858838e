package broker

import (
	"fmt"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// Limits on what one client can make the broker hold. Each mirrors a Kafka
// broker property (see the Config fields of the same names):
//
//   - max.broker.partitions: the partition replicas assigned to each
//     broker, by CreateTopics, CreatePartitions and auto-creation. Each
//     broker registers its limit with the metadata, and the metadata
//     state machine refuses (meta.ErrPartitionLimit, POLICY_VIOLATION) a
//     new topic or partitions that would put more replicas on a broker
//     than its limit, counting requests in the order they commit, so
//     racing requests cannot pass it together (KIP-578). Before that, a
//     request that could never fit is refused here (INVALID_PARTITIONS)
//     before its partitions are even placed;
//   - socket.request.max.bytes, queued.max.request.bytes,
//     queued.max.requests, connections.max.idle.ms and the request read
//     timeout: what a connection may buffer and for how long (conn.go,
//     budget.go);
//   - queued.max.response.bytes: the records Fetch responses hold until
//     written (fetch_budget.go);
//   - message.max.bytes: a batch's size, compressed and decompressed
//     (package log's produce validation);
//   - a Fetch's MaxWait, capped at FetchMaxWait (01_fetch.go);
//   - max.connections and max.connections.per.ip (connlimits.go), and the
//     client quotas of the metadata: byte rates and request time per user
//     and client id, enforced by throttling (quota.go).

// errTooManyPartitions: a topic asks for more partition replicas than
// every live broker together may hold (INVALID_PARTITIONS).
var errTooManyPartitions = fmt.Errorf("%w: more than max.broker.partitions", meta.ErrInvalidPartitions)

// checkPartitionCount refuses a topic of total partitions with rf replicas
// each that could not fit even in an empty cluster: more replicas than
// the live brokers' max.broker.partitions add up to. It bounds the
// placement a request may ask the metadata store to compute; whether the
// partitions fit beside the others is the state machine's to decide.
func (b *Broker) checkPartitionCount(topic string, total int32, rf int16) error {
	var room int64
	for _, br := range b.meta.Cluster().Brokers {
		if br.Fenced {
			continue
		}
		limit := br.MaxPartitions
		if limit <= 0 {
			// Registered by a broker that predates the limit.
			limit = b.cfg.MaxBrokerPartitions
		}
		room += int64(limit)
	}
	room = max(room, int64(b.cfg.MaxBrokerPartitions))
	if need := int64(total) * int64(max(rf, 1)); need > room {
		return fmt.Errorf("%w: topic %s asks for %d partitions of %d replicas, the live brokers' max.broker.partitions add up to %d",
			errTooManyPartitions, topic, total, max(rf, 1), room)
	}
	return nil
}
