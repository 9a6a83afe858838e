package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/runnel-dev/runnel/broker/internal/coordinator"
	"github.com/runnel-dev/runnel/broker/internal/meta"
	"github.com/runnel-dev/runnel/broker/internal/txn"
)

// txnStateTopic is the compacted internal topic that holds transaction
// coordinator state.
const txnStateTopic = "__transaction_state"

// ensureInternalTopic returns the internal topic name, creating it with
// partitions, replication factor rf (capped as internalTopicRF says) and
// configs when it is missing, and waiting until this broker has opened
// what it holds of it.
func (b *Broker) ensureInternalTopic(ctx context.Context, name string, partitions int32, rf int16, configs map[string]string) (*meta.Topic, error) {
	if t := b.meta.Cluster().Topics[name]; t != nil {
		return t, nil
	}
	rf, err := b.internalTopicRF(ctx, rf)
	if err != nil {
		return nil, err
	}
	_, err = b.meta.CreateTopic(ctx, meta.TopicSpec{
		Name: name, NumPartitions: partitions, ReplicationFactor: rf, Internal: true, Configs: configs,
	})
	if err != nil && !errors.Is(err, meta.ErrTopicExists) {
		return nil, fmt.Errorf("broker: create %s: %w", name, err)
	}
	if err := b.parts.reconcile(); err != nil {
		return nil, err
	}
	return b.waitTopic(ctx, name)
}

// startTxns creates __transaction_state when it is missing, starts the
// transaction coordinator, has it load every partition of the topic this
// broker leads, now and whenever it becomes a leader of one
// (coordinator_placement.go), and installs it as the partitions' KIP-890
// verifier.
// Producer ids come in blocks from the metadata store
// (meta.Store.AllocateProducerIDs), whose Raft log keeps the high-water
// mark, so they stay unique across restarts.
func (b *Broker) startTxns(ctx context.Context) error {
	t, err := b.ensureInternalTopic(ctx, txnStateTopic, b.cfg.TransactionStateTopicPartitions, b.cfg.TransactionStateLogReplicationFactor,
		// transaction.state.log.segment.bytes; retention as for offsets.
		map[string]string{"cleanup.policy": "compact", "segment.bytes": "104857600", "retention.ms": "-1"})
	if err != nil {
		return err
	}
	coord, err := txn.New(txn.Config{
		Partitions:                 int32(len(t.Partitions)),
		MaxTimeout:                 b.cfg.TransactionMaxTimeout,
		IDExpiration:               b.cfg.TransactionalIDExpiration,
		AbortTimedOutCheckInterval: b.cfg.TransactionAbortTimedOutCheckInterval,
		AllocateProducerIDs:        b.meta.AllocateProducerIDs,
		WriteMarker:                b.writeTxnMarker,
		PartitionExists:            b.partitionExists,
		Clock:                      coordinator.RealClock(b.cfg.Now),
		Logger:                     b.logger.With("component", "txn"),
	})
	if err != nil {
		return err
	}
	b.txns = coord
	b.placement.installTxns(coord)
	// Produces verify with the coordinator of their transactional id,
	// here or on another broker (txn_markers.go).
	b.parts.setTxnVerifier(produceVerifier{b})
	return nil
}

// WaitTxnsLoaded blocks until the transaction coordinator has loaded every
// __transaction_state partition this broker leads, or ctx ends.
func (b *Broker) WaitTxnsLoaded(ctx context.Context) error { return b.txns.WaitLoaded(ctx) }

func (b *Broker) partitionExists(topic string, partition int32) bool {
	t := b.meta.Cluster().Topics[topic]
	return t != nil && partition >= 0 && int(partition) < len(t.Partitions)
}
