// Package recordbatch reads and writes the header of a Kafka RecordBatch
// (magic 2), the unit every partition log stores, and the records of an
// uncompressed batch. The log validates and stamps batches with it; the
// group and transaction coordinators encode the batches they append and
// decode them again when they replay their partitions.
//
// A batch is a 61-byte header followed by its records, big-endian:
//
//	offset  size  field
//	0       8     base offset (assigned by the log)
//	8       4     length: bytes after this field
//	12      4     partition leader epoch (assigned by the log)
//	16      1     magic, 2
//	17      4     CRC32C of bytes 21 to the end
//	21      2     attributes: compression (bits 0-2), timestamp type (3),
//	              transactional (4), control (5), delete horizon (6)
//	23      4     last offset delta
//	27      8     base timestamp
//	35      8     max timestamp
//	43      8     producer id (-1: none)
//	51      2     producer epoch
//	53      4     base sequence
//	57      4     record count
//
// A record, in an uncompressed batch, is a varint length and then:
// attributes (1 byte), timestamp delta (varint), offset delta (varint),
// key length (varint, -1 for null) and key, value length (varint, -1 for
// null) and value, and a varint count of headers.
package recordbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// Byte offsets of the header fields.
const (
	OffBaseOffset      = 0
	OffLength          = 8
	OffLeaderEpoch     = 12
	OffMagic           = 16
	OffCRC             = 17
	OffAttributes      = 21
	OffLastOffsetDelta = 23
	OffBaseTimestamp   = 27
	OffMaxTimestamp    = 35
	OffProducerID      = 43
	OffProducerEpoch   = 51
	OffBaseSequence    = 53
	OffRecordCount     = 57
	// HeaderSize is where the records start.
	HeaderSize = 61
	// LogOverhead is the base offset and length fields: a batch's size
	// is its length field plus LogOverhead.
	LogOverhead = 12
)

// Attribute bits.
const (
	AttrCompression   = 0x07
	AttrLogAppendTime = 0x08
	AttrTransactional = 0x10
	AttrControl       = 0x20
)

// ErrCorrupt is returned, wrapped, for bytes that are not a well-formed
// batch.
var ErrCorrupt = errors.New("recordbatch: corrupt batch")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is a parsed batch header.
type Header struct {
	BaseOffset      int64
	Length          int32
	LeaderEpoch     int32
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	Records         int32
}

// Size is the whole batch's size in bytes.
func (h *Header) Size() int64 { return int64(h.Length) + LogOverhead }

// LastOffset is the offset of the batch's last record.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Transactional reports whether the batch belongs to a transaction.
func (h *Header) Transactional() bool { return h.Attributes&AttrTransactional != 0 }

// Control reports whether the batch is a control batch (a transaction
// marker).
func (h *Header) Control() bool { return h.Attributes&AttrControl != 0 }

// Compression is the batch's compression codec; 0 is none.
func (h *Header) Compression() int16 { return h.Attributes & AttrCompression }

// ParseHeader reads the header at the start of b. It checks what every
// stored batch satisfies (b holds a header, the length covers it, magic 2,
// non-negative last offset delta and record count) but neither that the
// batch fits in b nor its CRC.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, less than a header", ErrCorrupt, len(b))
	}
	h := Header{
		BaseOffset:      int64(binary.BigEndian.Uint64(b[OffBaseOffset:])),
		Length:          int32(binary.BigEndian.Uint32(b[OffLength:])),
		LeaderEpoch:     int32(binary.BigEndian.Uint32(b[OffLeaderEpoch:])),
		Attributes:      int16(binary.BigEndian.Uint16(b[OffAttributes:])),
		LastOffsetDelta: int32(binary.BigEndian.Uint32(b[OffLastOffsetDelta:])),
		BaseTimestamp:   int64(binary.BigEndian.Uint64(b[OffBaseTimestamp:])),
		MaxTimestamp:    int64(binary.BigEndian.Uint64(b[OffMaxTimestamp:])),
		ProducerID:      int64(binary.BigEndian.Uint64(b[OffProducerID:])),
		ProducerEpoch:   int16(binary.BigEndian.Uint16(b[OffProducerEpoch:])),
		BaseSequence:    int32(binary.BigEndian.Uint32(b[OffBaseSequence:])),
		Records:         int32(binary.BigEndian.Uint32(b[OffRecordCount:])),
	}
	switch {
	case h.Length < HeaderSize-LogOverhead:
		return Header{}, fmt.Errorf("%w: batch length %d shorter than a header", ErrCorrupt, h.Length)
	case b[OffMagic] != 2:
		return Header{}, fmt.Errorf("%w: magic %d, want 2", ErrCorrupt, int8(b[OffMagic]))
	case h.LastOffsetDelta < 0 || h.Records < 0:
		return Header{}, fmt.Errorf("%w: last offset delta %d, record count %d", ErrCorrupt, h.LastOffsetDelta, h.Records)
	}
	return h, nil
}

// CRCOK reports whether a whole batch's stored CRC matches its bytes.
func CRCOK(batch []byte) bool {
	return crc32.Checksum(batch[OffAttributes:], castagnoli) == binary.BigEndian.Uint32(batch[OffCRC:])
}

// SetCRC recomputes a whole batch's CRC after a change to its bytes.
func SetCRC(batch []byte) {
	binary.BigEndian.PutUint32(batch[OffCRC:], crc32.Checksum(batch[OffAttributes:], castagnoli))
}

// Next splits the first batch off data, checking that it is whole and
// its CRC matches: its header, its bytes, and the bytes after it.
func Next(data []byte) (h Header, batch, rest []byte, err error) {
	h, err = ParseHeader(data)
	if err != nil {
		return Header{}, nil, nil, err
	}
	if h.Size() > int64(len(data)) {
		return Header{}, nil, nil, fmt.Errorf("%w: batch of %d bytes, %d left", ErrCorrupt, h.Size(), len(data))
	}
	batch, rest = data[:h.Size()], data[h.Size():]
	if !CRCOK(batch) {
		return Header{}, nil, nil, fmt.Errorf("%w: CRC mismatch", ErrCorrupt)
	}
	return h, batch, rest, nil
}

// Record is a record's key and value; a nil Value is a tombstone.
type Record struct {
	Key, Value []byte
}

// Producer is the producer a batch is written for.
type Producer struct {
	ID       int64
	Epoch    int16
	Sequence int32 // base sequence; -1 for none
}

// NoProducer is the producer of a batch written by no producer.
var NoProducer = Producer{ID: -1, Epoch: -1, Sequence: -1}

// Encode builds one uncompressed batch of recs (at least one), every
// record stamped at ts, with the given attributes and producer. The base
// offset is 0 and the leader epoch -1, for the log to assign.
func Encode(recs []Record, ts time.Time, attrs int16, p Producer) []byte {
	b := make([]byte, HeaderSize, HeaderSize+64*len(recs))
	binary.BigEndian.PutUint32(b[OffLeaderEpoch:], 0xffffffff)
	b[OffMagic] = 2
	binary.BigEndian.PutUint16(b[OffAttributes:], uint16(attrs))
	binary.BigEndian.PutUint32(b[OffLastOffsetDelta:], uint32(len(recs)-1))
	ms := ts.UnixMilli()
	binary.BigEndian.PutUint64(b[OffBaseTimestamp:], uint64(ms))
	binary.BigEndian.PutUint64(b[OffMaxTimestamp:], uint64(ms))
	binary.BigEndian.PutUint64(b[OffProducerID:], uint64(p.ID))
	binary.BigEndian.PutUint16(b[OffProducerEpoch:], uint16(p.Epoch))
	binary.BigEndian.PutUint32(b[OffBaseSequence:], uint32(p.Sequence))
	binary.BigEndian.PutUint32(b[OffRecordCount:], uint32(len(recs)))
	var body []byte
	for i, r := range recs {
		body = body[:0]
		body = append(body, 0)                     // attributes
		body = binary.AppendVarint(body, 0)        // timestamp delta
		body = binary.AppendVarint(body, int64(i)) // offset delta
		body = binary.AppendVarint(body, int64(len(r.Key)))
		body = append(body, r.Key...)
		if r.Value == nil {
			body = binary.AppendVarint(body, -1)
		} else {
			body = binary.AppendVarint(body, int64(len(r.Value)))
			body = append(body, r.Value...)
		}
		body = binary.AppendVarint(body, 0) // headers
		b = binary.AppendVarint(b, int64(len(body)))
		b = append(b, body...)
	}
	binary.BigEndian.PutUint32(b[OffLength:], uint32(len(b)-LogOverhead))
	SetCRC(b)
	return b
}

// DecodeRecords decodes the records of a whole uncompressed batch with
// header h. Every record has a key; values may be null. The slices point
// into batch.
func DecodeRecords(h Header, batch []byte) ([]Record, error) {
	if h.Compression() != 0 {
		return nil, fmt.Errorf("%w: compressed (codec %d)", ErrCorrupt, h.Compression())
	}
	bad := func(what string) error { return fmt.Errorf("%w: record %s", ErrCorrupt, what) }
	b := batch[HeaderSize:]
	// Each record takes at least 7 bytes: do not trust the count for
	// the allocation.
	recs := make([]Record, 0, min(int(h.Records), len(b)/7+1))
	for range h.Records {
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
		var rec Record
		for j, dst := range []*[]byte{&rec.Key, &rec.Value} {
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
