package broker_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/runnel-dev/runnel/broker"
)

// encodeRecords encodes records with the given values, offset deltas from
// 0 and no key.
func encodeRecords(values ...[]byte) []byte {
	var recs []byte
	for i, v := range values {
		var body []byte
		body = append(body, 0)                     // attributes
		body = binary.AppendVarint(body, 0)        // timestamp delta
		body = binary.AppendVarint(body, int64(i)) // offset delta
		body = binary.AppendVarint(body, -1)       // no key
		body = binary.AppendVarint(body, int64(len(v)))
		body = append(body, v...)
		body = binary.AppendVarint(body, 0) // no headers
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	return recs
}

// rawBatch wraps records bytes (compressed or not, as attrs says) in a
// RecordBatch v2 header that declares count records, with a valid CRC.
func rawBatch(attrs uint16, count int32, recs []byte) []byte {
	b := make([]byte, 61, 61+len(recs))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	b[16] = 2
	binary.BigEndian.PutUint16(b[21:], attrs)
	binary.BigEndian.PutUint32(b[23:], uint32(count-1))
	now := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint64(b[27:], now)
	binary.BigEndian.PutUint64(b[35:], now)
	binary.BigEndian.PutUint64(b[43:], ^uint64(0)) // producer id -1
	binary.BigEndian.PutUint16(b[51:], 0xffff)
	binary.BigEndian.PutUint32(b[53:], 0xffffffff)
	binary.BigEndian.PutUint32(b[57:], uint32(count))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// zstdStream compresses prefix and n zero bytes after it as one streamed zstd
// frame (no declared content size), without holding the n bytes.
func zstdStream(t *testing.T, prefix []byte, n int) []byte {
	t.Helper()
	var out bytes.Buffer
	enc, err := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	enc.Write(prefix)
	zeros := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, len(zeros))
		enc.Write(zeros[:k])
		n -= k
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// Produce validation (message.max.bytes, compressed and decompressed):
// batches whose attributes or records lie are refused with the Kafka code
// a client expects, and nothing of them is stored.
func TestAbuseProduceBadBatches(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	createTopic(t, newAdmin(t, b.Addr()), "bad", 1, nil)
	cl := newClient(t, b.Addr())

	// A 2 MiB value of zeros in a 1 MiB topic, compressed to a few
	// hundred bytes: too large once decompressed.
	bigZstd := zstdStream(t, encodeRecords(make([]byte, 2<<20)), 0)
	// A few kilobytes that decompress to 64 MiB (1 GiB in the long form)
	// of zeros.
	bomb := abuseSize(64<<20, 1<<30)
	for _, c := range []struct {
		name  string
		batch []byte
		code  int16
	}{
		{"unknown codec 7", rawBatch(7, 1, encodeRecords([]byte("v"))), kerr.UnsupportedCompressionType.Code},
		{"unknown codec 5", rawBatch(5, 1, encodeRecords([]byte("v"))), kerr.UnsupportedCompressionType.Code},
		{"declares 1 record, holds 3", rawBatch(0, 1, encodeRecords([]byte("a"), []byte("b"), []byte("c"))), kerr.CorruptMessage.Code},
		{"declares 3 records, holds 1", rawBatch(0, 3, encodeRecords([]byte("a"))), kerr.CorruptMessage.Code},
		{"zstd that is not zstd", rawBatch(4, 1, []byte("not zstd at all")), kerr.CorruptMessage.Code},
		{"2 MiB decompressed in a 1 MiB topic", rawBatch(4, 1, bigZstd), kerr.MessageTooLarge.Code},
		{"zstd bomb of zeros", rawBatch(4, 1, zstdStream(t, nil, bomb)), kerr.MessageTooLarge.Code},
	} {
		code, _ := produceRaw(t, cl, "bad", c.batch)
		if code != c.code {
			t.Errorf("%s: %v, want %v", c.name, kerr.ErrorForCode(code), kerr.ErrorForCode(c.code))
		}
	}
	if hw := highWatermark(t, cl, "bad"); hw != 0 {
		t.Fatalf("high watermark %d after refused batches, want 0", hw)
	}
	// A good batch still goes in.
	if code, _ := produceRaw(t, cl, "bad", rawBatch(0, 2, encodeRecords([]byte("a"), []byte("b")))); code != 0 {
		t.Fatalf("good batch: %v", kerr.ErrorForCode(code))
	}
}
