package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// bombBatch is a zstd batch declaring one record whose few kilobytes
// decompress to n bytes: a record with a value of n-16 zeros.
func bombBatch(t *testing.T, n int) ([]byte, batchHeader) {
	t.Helper()
	var rec []byte
	rec = append(rec, 0)                     // attributes
	rec = binary.AppendVarint(rec, 0)        // timestamp delta
	rec = binary.AppendVarint(rec, 0)        // offset delta
	rec = binary.AppendVarint(rec, -1)       // no key
	rec = binary.AppendVarint(rec, int64(n)) // value length
	prefix := binary.AppendVarint(nil, int64(len(rec)+n+1))
	prefix = append(prefix, rec...)
	var out bytes.Buffer
	enc, err := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	enc.Write(prefix)
	zeros := make([]byte, 1<<20)
	for left := n; left > 0; left -= len(zeros) {
		enc.Write(zeros[:min(left, len(zeros))])
	}
	enc.Write([]byte{0}) // no headers
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, batchHeaderSize, batchHeaderSize+out.Len())
	b = append(b, out.Bytes()...)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-logOverhead))
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], codecZstd)
	binary.BigEndian.PutUint32(b[offRecordCount:], 1)
	h, err := parseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, h
}

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A batch stored before produce bounded decompression, or under a larger
// max.message.bytes, may decompress to far more than the reader's limit:
// the timestamp lookup streams it, and the cleaner and produce validation
// stop at the limit, each allocating a small fraction of what the batch
// claims.
func TestDecompressionIsBounded(t *testing.T) {
	const claim = 256 << 20
	batch, h := bombBatch(t, claim)
	const limit = 4 << 20

	var err error
	n := allocated(func() { _, _, _, err = findRecord(batch, &h, claim+64, func(int64, int64) bool { return false }) })
	if err != nil {
		t.Fatalf("timestamp walk of a %d-byte record: %v", claim, err)
	}
	if n > raceSlack*16<<20 {
		t.Errorf("timestamp walk of a %d MiB batch allocated %d MiB", claim>>20, n>>20)
	}
	n = allocated(func() { _, err = batchRecords(batch, &h, limit) })
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("batchRecords past the limit: %v, want ErrMessageTooLarge", err)
	}
	if n > raceSlack*4*limit {
		t.Errorf("batchRecords with a %d MiB limit allocated %d MiB", limit>>20, n>>20)
	}
	n = allocated(func() { err = checkRecords(batch, &h, limit, false) })
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("checkRecords past the limit: %v, want ErrMessageTooLarge", err)
	}
	if n > raceSlack*16<<20 {
		t.Errorf("checkRecords allocated %d MiB", n>>20)
	}
}
