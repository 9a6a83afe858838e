package log

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record-level work for compaction: walking the records of a batch,
// rebuilding a batch with some of them, and the key check that a compacted
// log makes on append.
//
// A record inside a batch (decompressed) is, with zigzag varints:
//
//	length varint (of what follows)
//	attributes int8
//	timestampDelta varlong
//	offsetDelta varint
//	keyLength varint (-1: null), key
//	valueLength varint (-1: null, a tombstone), value
//	headers

// attrDeleteHorizon marks a batch whose base timestamp is the delete
// horizon (KIP-534): the time after which its tombstones and, for a
// control batch, its marker may be removed by the cleaner. It is set when
// the cleaner first keeps such a batch; record timestamps stay correct
// because their deltas are rewritten against the new base.
const attrDeleteHorizon = 0x40

// record is one record of a batch, as sliced from its records bytes.
type record struct {
	body      []byte // after the length prefix
	tsDelta   int64
	tsLen     int // bytes of the timestamp delta varint, after the attributes byte
	offDelta  int64
	key       []byte
	nullKey   bool
	nullValue bool
}

// nextRecord parses the record at the start of recs and returns it and
// the bytes after it. Anything malformed is an error wrapping ErrCorrupt.
func nextRecord(recs []byte) (record, []byte, error) {
	var r record
	length, n := binary.Varint(recs)
	if n <= 0 || length < 1 || length > int64(len(recs)-n) {
		return r, nil, fmt.Errorf("%w: bad record length", ErrCorrupt)
	}
	r.body = recs[n : n+int(length)]
	rest := recs[n+int(length):]
	b := r.body[1:] // attributes
	var ok bool
	if r.tsDelta, r.tsLen, ok = varintAt(b); !ok {
		return r, nil, fmt.Errorf("%w: bad record timestamp delta", ErrCorrupt)
	}
	b = b[r.tsLen:]
	od, n2, ok := varintAt(b)
	if !ok {
		return r, nil, fmt.Errorf("%w: bad record offset delta", ErrCorrupt)
	}
	r.offDelta = od
	b = b[n2:]
	klen, n3, ok := varintAt(b)
	if !ok || klen < -1 || klen > int64(len(b)-n3) {
		return r, nil, fmt.Errorf("%w: bad record key length", ErrCorrupt)
	}
	b = b[n3:]
	if klen < 0 {
		r.nullKey = true
	} else {
		r.key = b[:klen]
		b = b[klen:]
	}
	vlen, n4, ok := varintAt(b)
	if !ok || vlen < -1 || vlen > int64(len(b)-n4) {
		return r, nil, fmt.Errorf("%w: bad record value length", ErrCorrupt)
	}
	r.nullValue = vlen < 0
	return r, rest, nil
}

func varintAt(b []byte) (int64, int, bool) {
	v, n := binary.Varint(b)
	return v, n, n > 0
}

// batchRecordList decodes every record of a data batch, decompressing no
// more than limit bytes. The count must match the header's.
func batchRecordList(batch []byte, h *batchHeader, limit int64, dst []record) ([]record, error) {
	recs, err := batchRecords(batch, h, limit)
	if err != nil {
		return nil, err
	}
	dst = dst[:0]
	for i := int32(0); i < h.records; i++ {
		var r record
		r, recs, err = nextRecord(recs)
		if err != nil {
			return nil, fmt.Errorf("record %d of batch at offset %d: %w", i, h.baseOffset, err)
		}
		if r.offDelta < 0 || r.offDelta > int64(h.lastOffsetDelta) {
			return nil, fmt.Errorf("%w: record %d of batch at offset %d has offset delta %d", ErrCorrupt, i, h.baseOffset, r.offDelta)
		}
		dst = append(dst, r)
	}
	if len(recs) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the records of batch at offset %d", ErrCorrupt, len(recs), h.baseOffset)
	}
	return dst, nil
}

// compressors re-compress rebuilt batches, one per codec, created on first
// use; kgo's compressors are safe for concurrent use.
var compressors struct {
	once sync.Once
	c    [5]kgo.Compressor
}

func compressorFor(codec int16) (kgo.Compressor, error) {
	compressors.once.Do(func() {
		for i, c := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
			compressors.c[i+1], _ = kgo.DefaultCompressor(c)
		}
	})
	if codec < 1 || codec > 4 || compressors.c[codec] == nil {
		return nil, fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, codec)
	}
	return compressors.c[codec], nil
}

// rebuildBatch appends to dst the batch rebuilt with the records for which
// keep is true, in order. Every header field stays (base offset, leader
// epoch, last offset delta, timestamps, producer id, epoch and base
// sequence, attributes) except the record count, the length and the CRC;
// when horizon >= 0 the batch gets the delete-horizon attribute and
// horizon as its base timestamp, and record timestamp deltas are rewritten
// so every record keeps its timestamp. Records are re-encoded only when
// their timestamp delta changes, and compressed again with the batch's
// codec.
func rebuildBatch(dst, batch []byte, h *batchHeader, recs []record, keep []bool, horizon int64) ([]byte, error) {
	base := h.baseTimestamp
	attrs := h.attributes
	if horizon >= 0 {
		base = horizon
		attrs |= attrDeleteHorizon
	}
	var body []byte
	n := int32(0)
	for i := range recs {
		if !keep[i] {
			continue
		}
		n++
		r := &recs[i]
		if base == h.baseTimestamp {
			body = binary.AppendVarint(body, int64(len(r.body)))
			body = append(body, r.body...)
			continue
		}
		ts := h.baseTimestamp + r.tsDelta
		var tsb [binary.MaxVarintLen64]byte
		tn := binary.PutVarint(tsb[:], ts-base)
		rest := r.body[1+r.tsLen:]
		body = binary.AppendVarint(body, int64(1+tn+len(rest)))
		body = append(body, r.body[0])
		body = append(body, tsb[:tn]...)
		body = append(body, rest...)
	}
	if codec := h.attributes & attrCompression; codec != 0 && len(body) > 0 {
		c, err := compressorFor(codec)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		out, used := c.Compress(&buf, body)
		if int16(used) != codec {
			return nil, fmt.Errorf("log: recompress batch at offset %d with codec %d failed", h.baseOffset, codec)
		}
		body = out
	}
	start := len(dst)
	dst = append(dst, batch[:batchHeaderSize]...)
	dst = append(dst, body...)
	out := dst[start:]
	binary.BigEndian.PutUint32(out[offLength:], uint32(len(out)-logOverhead))
	binary.BigEndian.PutUint16(out[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint64(out[offBaseTimestamp:], uint64(base))
	binary.BigEndian.PutUint32(out[offRecordCount:], uint32(n))
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	return dst, nil
}
