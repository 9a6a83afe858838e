package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
)

// RecordBatch v2 header layout and attributes, from package recordbatch,
// which documents them.
const (
	offBaseOffset      = recordbatch.OffBaseOffset
	offLength          = recordbatch.OffLength
	offLeaderEpoch     = recordbatch.OffLeaderEpoch
	offMagic           = recordbatch.OffMagic
	offCRC             = recordbatch.OffCRC
	offAttributes      = recordbatch.OffAttributes
	offLastOffsetDelta = recordbatch.OffLastOffsetDelta
	offBaseTimestamp   = recordbatch.OffBaseTimestamp
	offMaxTimestamp    = recordbatch.OffMaxTimestamp
	offProducerID      = recordbatch.OffProducerID
	offProducerEpoch   = recordbatch.OffProducerEpoch
	offBaseSequence    = recordbatch.OffBaseSequence
	offRecordCount     = recordbatch.OffRecordCount
	batchHeaderSize    = recordbatch.HeaderSize
	logOverhead        = recordbatch.LogOverhead

	attrCompression   = recordbatch.AttrCompression
	attrLogAppendTime = recordbatch.AttrLogAppendTime
	attrTransactional = recordbatch.AttrTransactional
	attrControl       = recordbatch.AttrControl
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchHeader is the part of a batch header the log needs.
type batchHeader struct {
	baseOffset      int64
	size            int64 // whole batch, including the 12-byte prefix
	leaderEpoch     int32
	attributes      int16
	lastOffsetDelta int32
	baseTimestamp   int64
	maxTimestamp    int64
	producerID      int64
	producerEpoch   int16
	baseSequence    int32
	records         int32
}

func (h *batchHeader) lastOffset() int64 { return h.baseOffset + int64(h.lastOffsetDelta) }

func (h *batchHeader) transactional() bool { return h.attributes&attrTransactional != 0 }
func (h *batchHeader) control() bool       { return h.attributes&attrControl != 0 }

// parseHeader reads the header at the start of b, which must hold at least
// batchHeaderSize bytes, with recordbatch.ParseHeader: it checks what
// every stored batch satisfies but not that the batch fits in b.
func parseHeader(b []byte) (batchHeader, error) {
	h, err := recordbatch.ParseHeader(b)
	if err != nil {
		return batchHeader{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return batchHeader{
		baseOffset:      h.BaseOffset,
		size:            h.Size(),
		leaderEpoch:     h.LeaderEpoch,
		attributes:      h.Attributes,
		lastOffsetDelta: h.LastOffsetDelta,
		baseTimestamp:   h.BaseTimestamp,
		maxTimestamp:    h.MaxTimestamp,
		producerID:      h.ProducerID,
		producerEpoch:   h.ProducerEpoch,
		baseSequence:    h.BaseSequence,
		records:         h.Records,
	}, nil
}

// crcOK reports whether a whole batch's stored CRC matches its bytes.
func crcOK(batch []byte) bool { return recordbatch.CRCOK(batch) }

// batchesInfo summarises a checked run of batches.
type batchesInfo struct {
	records int64
	// producers is set when a batch carries a producer id (idempotent or
	// transactional), control when a batch is a control batch.
	producers, control bool
}

// checkBatches validates appended input before any of it is written: a run
// of whole RecordBatch v2 batches, each with a sane length, magic 2, a
// matching CRC32C, a known compression codec, at least one record,
// lastOffsetDelta == records-1, and no larger than max.message.bytes,
// compressed or not; a batch with a producer id has an epoch and a
// sequence, and a transactional one has a producer id. The records inside
// are walked (checkRecords): exactly the declared count, well formed, and
// in a compacted log each with a key.
func checkBatches(in []byte, cfg *Config) (batchesInfo, error) {
	maxBytes := cfg.MaxMessageBytes
	var info batchesInfo
	if len(in) == 0 {
		return info, fmt.Errorf("%w: no batches", ErrCorrupt)
	}
	for p := 0; p < len(in); {
		b := in[p:]
		if len(b) < batchHeaderSize {
			return info, fmt.Errorf("%w: %d trailing bytes after %d", ErrCorrupt, len(b), p)
		}
		h, err := parseHeader(b)
		if err != nil {
			return info, err
		}
		if h.size > int64(len(b)) {
			return info, fmt.Errorf("%w: batch at %d claims %d bytes, %d remain", ErrCorrupt, p, h.size, len(b))
		}
		if h.size > int64(maxBytes) {
			return info, fmt.Errorf("%w: batch of %d bytes, max.message.bytes %d", ErrMessageTooLarge, h.size, maxBytes)
		}
		if !crcOK(b[:h.size]) {
			return info, fmt.Errorf("%w: CRC mismatch in batch at %d", ErrCorrupt, p)
		}
		if h.records < 1 || h.lastOffsetDelta != h.records-1 {
			return info, fmt.Errorf("%w: %d records with last offset delta %d", ErrCorrupt, h.records, h.lastOffsetDelta)
		}
		if !h.control() {
			if err := checkRecords(b[:h.size], &h, int64(maxBytes), cfg.CleanupPolicy.Compact()); err != nil {
				return info, err
			}
		}
		if h.producerID >= 0 {
			if h.producerEpoch < 0 || h.baseSequence < 0 {
				return info, fmt.Errorf("%w: producer %d with epoch %d, sequence %d", ErrInvalidRecord, h.producerID, h.producerEpoch, h.baseSequence)
			}
			info.producers = true
		} else if h.transactional() {
			return info, fmt.Errorf("%w: transactional batch without a producer id", ErrInvalidRecord)
		}
		info.control = info.control || h.control()
		info.records += int64(h.records)
		p += int(h.size)
	}
	// Offsets within a segment are relative uint32s; one append may not
	// claim more than a segment can hold.
	if info.records > math.MaxInt32 {
		return info, fmt.Errorf("%w: %d records in one append", ErrCorrupt, info.records)
	}
	return info, nil
}

// stampBatch patches a validated batch in place as it is written: the base
// offset and leader epoch (outside the CRC'd bytes), and for LogAppendTime
// the timestamp type and max timestamp, recomputing the CRC.
func stampBatch(b []byte, size int64, base int64, epoch int32, appendTime int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(base))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
	if appendTime >= 0 {
		b[offAttributes+1] |= attrLogAppendTime
		binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(appendTime))
		binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:size], castagnoli))
	}
}

// PeekProducer reads the producer id, epoch and transactional flag of the
// first batch in b, for a caller that must act on them before appending
// (KIP-890 verification). txn is false when b is too short to hold a
// header; the append validates the rest.
func PeekProducer(b []byte) (producerID int64, epoch int16, txn bool) {
	if len(b) < batchHeaderSize {
		return -1, -1, false
	}
	return int64(binary.BigEndian.Uint64(b[offProducerID:])),
		int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		binary.BigEndian.Uint16(b[offAttributes:])&attrTransactional != 0
}
