package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrCorrupt is returned when a batch read back from __consumer_offsets
// cannot be decoded.
var ErrCorrupt = errors.New("group: corrupt record batch")

// Versions of the __consumer_offsets record formats this package writes,
// the ones Kafka 4 writes for classic groups.
const (
	offsetKeyVersion   = 1
	offsetValueVersion = 3
	groupKeyVersion    = 2
	groupValueVersion  = 3
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// kv is one record to write; a nil value is a tombstone.
type kv struct {
	key, value []byte
}

func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version = offsetKeyVersion
	k.Group, k.Topic, k.Partition = group, topic, partition
	return k.AppendTo(nil)
}

func offsetValue(o offset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetValueVersion
	v.Offset = o.offset
	v.LeaderEpoch = o.leaderEpoch
	v.Metadata = o.metadata
	v.CommitTimestamp = o.commitTime.UnixMilli()
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version = groupKeyVersion
	k.Group = group
	return k.AppendTo(nil)
}

// Batch header layout (RecordBatch v2), by byte offset.
const (
	offLength     = 8
	offEpoch      = 12
	offMagic      = 16
	offCRC        = 17
	offAttributes = 21
	offLastDelta  = 23
	offFirstTS    = 27
	offMaxTS      = 35
	offProducerID = 43
	offProdEpoch  = 51
	offBaseSeq    = 53
	offCount      = 57
	headerSize    = 61
)

// encodeBatch builds one uncompressed RecordBatch v2 holding recs, with
// every record stamped at now. The base offset is left 0 for the log to
// assign.
func encodeBatch(recs []kv, now time.Time) []byte {
	return encodeProducerBatch(recs, now, -1, -1, 0)
}

// Batch attributes for transactions.
const (
	attrTransactional = 0x10
	attrControl       = 0x20
)

// encodeProducerBatch is encodeBatch for a producer: a transactional
// offset commit (attrs attrTransactional) or its marker (attrs
// attrTransactional|attrControl) carries the producer id and epoch, and
// no sequence (-1), as Kafka's coordinator writes them; a partition that
// checks producer sequences numbers it as it appends.
func encodeProducerBatch(recs []kv, now time.Time, pid int64, epoch int16, attrs uint16) []byte {
	b := make([]byte, headerSize, headerSize+64*len(recs))
	binary.BigEndian.PutUint32(b[offEpoch:], 0xffffffff)
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint32(b[offLastDelta:], uint32(len(recs)-1))
	ts := now.UnixMilli()
	binary.BigEndian.PutUint64(b[offFirstTS:], uint64(ts))
	binary.BigEndian.PutUint64(b[offMaxTS:], uint64(ts))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(b[offProdEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSeq:], 0xffffffff)
	binary.BigEndian.PutUint32(b[offCount:], uint32(len(recs)))
	var body []byte
	for i, r := range recs {
		body = body[:0]
		body = append(body, 0)                     // attributes
		body = binary.AppendVarint(body, 0)        // timestamp delta
		body = binary.AppendVarint(body, int64(i)) // offset delta
		body = binary.AppendVarint(body, int64(len(r.key)))
		body = append(body, r.key...)
		if r.value == nil {
			body = binary.AppendVarint(body, -1)
		} else {
			body = binary.AppendVarint(body, int64(len(r.value)))
			body = append(body, r.value...)
		}
		body = binary.AppendVarint(body, 0) // headers
		b = binary.AppendVarint(b, int64(len(body)))
		b = append(b, body...)
	}
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crc32c))
	return b
}

// markerRecord is the one record of a transaction marker: a
// ControlRecordKey (version 0, type 1 for COMMIT, 0 for ABORT) and an
// EndTxnMarker value with the coordinator epoch.
func markerRecord(commit bool, coordinatorEpoch int32) kv {
	k := kmsg.NewControlRecordKey()
	if commit {
		k.Type = kmsg.ControlRecordKeyTypeCommit
	}
	v := kmsg.NewEndTxnMarker()
	v.CoordinatorEpoch = coordinatorEpoch
	return kv{key: k.AppendTo(nil), value: v.AppendTo(nil)}
}

// decodedBatch is one batch read back: the offset after it and its
// records, or skip when it holds nothing this package reads (a compressed
// batch, which the coordinator never writes). A transactional batch
// holds a producer's pending offsets; a control batch (marker) commits
// or aborts them.
type decodedBatch struct {
	next    int64
	skip    bool
	records []kv

	transactional bool
	pid           int64
	// control is set for a marker; commit says which.
	control, commit bool
}

// decodeBatches splits whole batches and decodes their records. It never
// panics on bad input; it returns what it decoded before the error.
func decodeBatches(data []byte) ([]decodedBatch, error) {
	var out []decodedBatch
	for len(data) > 0 {
		if len(data) < headerSize {
			return out, fmt.Errorf("%w: %d bytes left, less than a batch header", ErrCorrupt, len(data))
		}
		size := int64(int32(binary.BigEndian.Uint32(data[offLength:]))) + 12
		if size < headerSize || size > int64(len(data)) {
			return out, fmt.Errorf("%w: batch length %d", ErrCorrupt, size)
		}
		batch := data[:size]
		data = data[size:]
		if batch[offMagic] != 2 {
			return out, fmt.Errorf("%w: magic %d", ErrCorrupt, batch[offMagic])
		}
		if crc32.Checksum(batch[offAttributes:], crc32c) != binary.BigEndian.Uint32(batch[offCRC:]) {
			return out, fmt.Errorf("%w: CRC mismatch", ErrCorrupt)
		}
		base := int64(binary.BigEndian.Uint64(batch))
		last := int64(int32(binary.BigEndian.Uint32(batch[offLastDelta:])))
		db := decodedBatch{next: base + last + 1}
		attrs := binary.BigEndian.Uint16(batch[offAttributes:])
		if attrs&0x07 != 0 {
			db.skip = true
			out = append(out, db)
			continue
		}
		db.transactional = attrs&attrTransactional != 0
		db.control = attrs&attrControl != 0
		db.pid = int64(binary.BigEndian.Uint64(batch[offProducerID:]))
		n := int32(binary.BigEndian.Uint32(batch[offCount:]))
		if n < 0 {
			return out, fmt.Errorf("%w: record count %d", ErrCorrupt, n)
		}
		recs, err := decodeRecords(batch[headerSize:], int(n))
		if err != nil {
			return out, err
		}
		if db.control {
			if len(recs) != 1 || len(recs[0].key) < 4 {
				return out, fmt.Errorf("%w: control batch", ErrCorrupt)
			}
			db.commit = binary.BigEndian.Uint16(recs[0].key[2:]) == 1
			recs = nil
		}
		db.records = recs
		out = append(out, db)
	}
	return out, nil
}

func decodeRecords(b []byte, n int) ([]kv, error) {
	bad := func(what string) error { return fmt.Errorf("%w: record %s", ErrCorrupt, what) }
	recs := make([]kv, 0, min(n, len(b)/7+1))
	for i := 0; i < n; i++ {
		l, w := binary.Varint(b)
		if w <= 0 || l < 0 || l > int64(len(b)-w) {
			return nil, bad("length")
		}
		r := b[w : w+int(l)]
		b = b[w+int(l):]
		if len(r) < 1 {
			return nil, bad("attributes")
		}
		r = r[1:]
		for range 2 { // timestamp and offset deltas
			_, w := binary.Varint(r)
			if w <= 0 {
				return nil, bad("delta")
			}
			r = r[w:]
		}
		var rec kv
		for j, dst := range []*[]byte{&rec.key, &rec.value} {
			l, w := binary.Varint(r)
			if w <= 0 || l < -1 || l > int64(len(r)-w) {
				return nil, bad("key or value")
			}
			r = r[w:]
			if l >= 0 {
				*dst = r[:l:l]
				r = r[l:]
			} else if j == 0 {
				return nil, bad("null key")
			}
		}
		recs = append(recs, rec)
	}
	if len(b) != 0 {
		return nil, bad("trailing bytes")
	}
	return recs, nil
}
