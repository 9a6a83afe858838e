package log

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kv is a test record: a key (or none) and a value (or a tombstone).
type kv struct {
	key   string
	value string
	tomb  bool
	nokey bool
}

// keyedBatch builds a batch of the given records with timestamps ts,
// ts+1, ..., compressed with codec.
func keyedBatch(t testing.TB, recs []kv, codec int, ts int64) []byte {
	t.Helper()
	var body []byte
	for i, r := range recs {
		rec := kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: int32(i)}
		if !r.nokey {
			rec.Key = []byte(r.key)
		}
		if !r.tomb {
			rec.Value = []byte(r.value)
		}
		enc := rec.AppendTo(nil)
		rec.Length = int32(len(enc) - 1)
		body = rec.AppendTo(body)
	}
	body = compress(t, codec, body)
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           int16(codec & 0x07),
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       ts,
		MaxTimestamp:         ts + int64(len(recs)-1),
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              body,
	}
	b.Length = int32(batchHeaderSize - logOverhead + len(body))
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	return out
}

// asProducer patches a batch's producer fields and fixes its CRC.
func asProducer(b []byte, pid int64, epoch int16, seq int32, txn bool) []byte {
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(seq))
	if txn {
		b[offAttributes+1] |= attrTransactional
	}
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// offRec is a record read back from a log.
type offRec struct {
	off     int64
	ts      int64
	key     string
	value   string
	tomb    bool
	control bool
	horizon bool // its batch carries a delete horizon
}

// readRecords reads every batch of the log and decodes its records,
// checking batches as readAll does.
func readRecords(t testing.TB, l *Log) []offRec {
	t.Helper()
	var out []offRec
	off, end := l.StartOffset(), l.EndOffset()
	for off < end {
		res, err := l.Read(off, 1<<20, end)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(res.Records) == 0 {
			t.Fatalf("read at %d of [%d, %d): nothing", off, l.StartOffset(), end)
		}
		hs := checkBatchesRead(t, res.Records)
		p := int64(0)
		for i := range hs {
			h := hs[i]
			b := res.Records[p : p+h.size]
			p += h.size
			recs, err := batchRecordList(b, &h, minReadLimit, nil)
			if err != nil {
				t.Fatalf("batch %d: %v", h.baseOffset, err)
			}
			for _, r := range recs {
				o := h.baseOffset + r.offDelta
				if o < off {
					continue
				}
				_, val := recordKV(t, r)
				out = append(out, offRec{
					off: o, ts: h.baseTimestamp + r.tsDelta, key: string(r.key), value: val, tomb: r.nullValue,
					control: h.control(), horizon: h.attributes&attrDeleteHorizon != 0,
				})
			}
			off = h.lastOffset() + 1
		}
	}
	return out
}

// recordKV decodes a record's value.
func recordKV(t testing.TB, r record) (string, string) {
	t.Helper()
	b := r.body[1+r.tsLen:]
	_, n := binary.Varint(b) // offset delta
	b = b[n:]
	kl, n := binary.Varint(b)
	b = b[n:]
	if kl > 0 {
		b = b[kl:]
	}
	vl, n := binary.Varint(b)
	b = b[n:]
	if vl < 0 {
		return string(r.key), ""
	}
	return string(r.key), string(b[:vl])
}

// latest replays records into a key → value view; tombstones delete.
func latest(recs []offRec) map[string]string {
	m := make(map[string]string)
	for _, r := range recs {
		if r.control {
			continue
		}
		if r.tomb {
			delete(m, r.key)
		} else {
			m[r.key] = r.value
		}
	}
	return m
}

func compactConfig() Config {
	c := testConfig()
	c.CleanupPolicy = CleanupCompact
	c.DeleteRetention = DefaultDeleteRetention
	c.MinCleanableDirtyRatio = 0
	return c
}
