package log

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// decompressor inflates compressed batches for timestamp lookups: gzip,
// snappy (raw block or the xerial framing of the Java client), lz4 frame
// and zstd. It bounds output and is safe for concurrent use.
var decompressor = kgo.DefaultDecompressor()

// batchRecords returns a batch's record bytes, decompressed when its
// attributes say so.
func batchRecords(batch []byte, h *batchHeader) ([]byte, error) {
	raw := batch[batchHeaderSize:h.size]
	codec := h.attributes & attrCompression
	if codec == 0 {
		return raw, nil
	}
	if codec > 4 {
		return nil, fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, codec)
	}
	out, err := decompressor.Decompress(raw, kgo.CompressionCodecType(codec))
	if err != nil {
		return nil, fmt.Errorf("%w: decompress batch at offset %d: %v", ErrCorrupt, h.baseOffset, err)
	}
	return out, nil
}

// findRecord walks the records of a batch (decoded with batchRecords) and
// returns the offset and timestamp of the first record for which match
// returns true. For LogAppendTime batches every record's timestamp is the
// batch's max timestamp.
func findRecord(recs []byte, h *batchHeader, match func(off, ts int64) bool) (off, ts int64, ok bool, err error) {
	logAppend := h.attributes&attrLogAppendTime != 0
	for i := int32(0); i < h.records; i++ {
		length, n := binary.Varint(recs)
		if n <= 0 || length < 0 || length > int64(len(recs)-n) {
			return 0, 0, false, fmt.Errorf("%w: record %d of batch at offset %d: bad length", ErrCorrupt, i, h.baseOffset)
		}
		body := recs[n : n+int(length)]
		recs = recs[n+int(length):]
		if len(body) < 1 {
			return 0, 0, false, fmt.Errorf("%w: record %d of batch at offset %d: empty", ErrCorrupt, i, h.baseOffset)
		}
		tsDelta, n1 := binary.Varint(body[1:]) // after the attributes byte
		if n1 <= 0 {
			return 0, 0, false, fmt.Errorf("%w: record %d of batch at offset %d: bad timestamp delta", ErrCorrupt, i, h.baseOffset)
		}
		offDelta, n2 := binary.Varint(body[1+n1:])
		if n2 <= 0 {
			return 0, 0, false, fmt.Errorf("%w: record %d of batch at offset %d: bad offset delta", ErrCorrupt, i, h.baseOffset)
		}
		off, ts := h.baseOffset+offDelta, h.baseTimestamp+tsDelta
		if logAppend {
			ts = h.maxTimestamp
		}
		if match(off, ts) {
			return off, ts, true, nil
		}
	}
	return 0, 0, false, nil
}
