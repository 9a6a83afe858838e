package txn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
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

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// record is one __transaction_state record; a nil value is a tombstone.
type record struct {
	key, value []byte
}

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
	m.lastEpoch = -1
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

// encodeBatch builds one uncompressed RecordBatch v2 holding recs, stamped
// at now, with no producer; the log assigns the base offset.
func encodeBatch(recs []record, now time.Time) []byte {
	var body []byte
	for i, r := range recs {
		rec := kmsg.Record{OffsetDelta: int32(i), Key: r.key, Value: r.value}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1) // a one-byte zero length prefix
		body = rec.AppendTo(body)
	}
	ts := now.UnixMilli()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       ts,
		MaxTimestamp:         ts,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              body,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32c))
	return raw
}

// decodedBatch is one batch read back: the offset after it and its
// records (none for a control batch).
type decodedBatch struct {
	next    int64
	records []record
}

// decodeBatches splits whole batches and decodes their records. It never
// panics on bad input; it returns what it decoded before the error.
func decodeBatches(data []byte) ([]decodedBatch, error) {
	const headerSize = 61
	var out []decodedBatch
	for len(data) > 0 {
		if len(data) < headerSize {
			return out, fmt.Errorf("%w: %d bytes left, less than a batch header", ErrCorrupt, len(data))
		}
		size := int64(int32(binary.BigEndian.Uint32(data[8:]))) + 12
		if size < headerSize || size > int64(len(data)) {
			return out, fmt.Errorf("%w: batch length %d", ErrCorrupt, size)
		}
		raw := data[:size]
		data = data[size:]
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw); err != nil {
			return out, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if b.Magic != 2 || uint32(b.CRC) != crc32.Checksum(raw[21:], crc32c) {
			return out, fmt.Errorf("%w: magic %d or CRC", ErrCorrupt, b.Magic)
		}
		db := decodedBatch{next: b.FirstOffset + int64(b.LastOffsetDelta) + 1}
		if b.Attributes&0x27 != 0 { // compressed or control: never ours
			out = append(out, db)
			continue
		}
		recs := b.Records
		for i := int32(0); i < b.NumRecords; i++ {
			l, w := binary.Varint(recs)
			if w <= 0 || l < 0 || l > int64(len(recs)-w) {
				return out, fmt.Errorf("%w: record length", ErrCorrupt)
			}
			var r kmsg.Record
			if err := r.ReadFrom(recs[:w+int(l)]); err != nil {
				return out, fmt.Errorf("%w: record: %v", ErrCorrupt, err)
			}
			recs = recs[w+int(l):]
			if r.Key == nil {
				return out, fmt.Errorf("%w: null key", ErrCorrupt)
			}
			db.records = append(db.records, record{key: r.Key, value: r.Value})
		}
		out = append(out, db)
	}
	return out, nil
}
