package txn

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrCorrupt is returned when a batch read back from __transaction_state
// cannot be decoded.
var ErrCorrupt = errors.New("txn: corrupt record batch")

// Versions of the __transaction_state record formats this package writes,
// the ones Kafka 4 writes.
const (
	keyVersion   = 0
	valueVersion = 1
)

func txnKey(id string) []byte {
	k := kmsg.NewTxnMetadataKey()
	k.Version = keyVersion
	k.TransactionalID = id
	return k.AppendTo(nil)
}

// txnValue encodes a transaction's persistent fields.
func txnValue(m *txnMeta) []byte {
	v := kmsg.NewTxnMetadataValue()
	v.Version = valueVersion
	v.ProducerID = m.pid
	v.ProducerEpoch = m.epoch
	v.TimeoutMillis = int32(m.timeout.Milliseconds())
	v.State = kmsg.TransactionState(m.state)
	v.PreviousProducerID = m.lastPid
	v.NextProducerID = m.nextPid
	v.ClientTransactionVersion = m.tv
	v.LastUpdateTimestamp = m.updated.UnixMilli()
	v.StartTimestamp = -1
	if !m.start.IsZero() {
		v.StartTimestamp = m.start.UnixMilli()
	}
	for _, tp := range m.sortedPartitions() {
		if n := len(v.Topics); n > 0 && v.Topics[n-1].Topic == tp.Topic {
			v.Topics[n-1].Partitions = append(v.Topics[n-1].Partitions, tp.Partition)
			continue
		}
		t := kmsg.NewTxnMetadataValueTopic()
		t.Topic = tp.Topic
		t.Partitions = []int32{tp.Partition}
		v.Topics = append(v.Topics, t)
	}
	return v.AppendTo(nil)
}

// decodeValue rebuilds a transaction from its stored value.
func decodeValue(id string, raw []byte) (*txnMeta, error) {
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(raw); err != nil {
		return nil, fmt.Errorf("%w: value of %q: %v", ErrCorrupt, id, err)
	}
	m := &txnMeta{
		id:      id,
		pid:     v.ProducerID,
		epoch:   v.ProducerEpoch,
		lastPid: v.PreviousProducerID,
		nextPid: v.NextProducerID,
		tv:      v.ClientTransactionVersion,
		timeout: time.Duration(v.TimeoutMillis) * time.Millisecond,
		state:   State(v.State),
		updated: time.UnixMilli(v.LastUpdateTimestamp),
		parts:   make(map[TopicPartition]struct{}),
	}
	if v.Version < 1 {
		m.lastPid, m.nextPid = -1, -1
	}
	// The stored value keeps no previous epoch, but under transaction
	// version 2 an end bumps the epoch as it prepares, so the producer
	// that ended holds the one below. When the answer was lost with the
	// coordinator that gave it, the producer comes back with that epoch
	// (KIP-360's InitProducerID with its id and epoch): accept it, as
	// the coordinator that bumped it would have, rather than fence the
	// producer whose transaction this is.
	m.lastEpoch = -1
	if m.tv == 2 && m.epoch > 0 && m.state >= PrepareCommit && m.state <= CompleteAbort {
		m.lastEpoch = m.epoch - 1
	}
	if v.StartTimestamp >= 0 {
		m.start = time.UnixMilli(v.StartTimestamp)
	}
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			m.parts[TopicPartition{t.Topic, p}] = struct{}{}
		}
	}
	return m, nil
}

func (m *txnMeta) sortedPartitions() []TopicPartition {
	out := make([]TopicPartition, 0, len(m.parts))
	for tp := range m.parts {
		out = append(out, tp)
	}
	slices.SortFunc(out, func(a, b TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out
}
