package log

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRecover writes arbitrary bytes as a segment — the newest, which is
// fully scanned, or an older one with arbitrary index files — and checks
// Open never panics and leaves a log that reads, answers timestamp
// lookups and takes appends.
func FuzzRecover(f *testing.F) {
	var valid []byte
	for i := 0; i < 4; i++ {
		valid = append(valid, makeBatch(f, batchSpec{n: 1 + i, value: 10, firstTs: int64(i * 10)})...)
	}
	f.Add(valid, []byte(nil), []byte(nil), false)
	f.Add(valid[:len(valid)-7], []byte(nil), []byte(nil), false)
	f.Add(append(bytes.Clone(valid), 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 80), []byte(nil), []byte(nil), false)
	f.Add(valid, []byte{0, 0, 0, 1, 0, 0, 0, 86}, []byte{0, 0, 0, 0, 0, 0, 0, 30, 0, 0, 0, 1}, true)
	f.Add(compress(f, codecGzip, valid), []byte{1}, []byte{2}, true)
	f.Fuzz(func(t *testing.T, data, index, timeIndex []byte, old bool) {
		dir := t.TempDir()
		seg := segmentName(0)
		os.WriteFile(filepath.Join(dir, seg+logSuffix), data, 0o644)
		if old {
			os.WriteFile(filepath.Join(dir, seg+indexSuffix), index, 0o644)
			os.WriteFile(filepath.Join(dir, seg+timeIndexSuffix), timeIndex, 0o644)
			os.WriteFile(filepath.Join(dir, segmentName(1<<20)+logSuffix), nil, 0o644)
		}
		cfg := testConfig()
		cfg.IndexIntervalBytes = 64
		l, err := Open(dir, cfg)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer l.Close()
		checkInvariants(t, l)
		end := l.EndOffset()
		for off := l.StartOffset(); off <= end; off = max(off+1, off*2) {
			res, err := l.Read(off, 200, end)
			if err != nil {
				if old && errors.Is(err, ErrCorrupt) {
					continue // an older segment's middle is not rescanned
				}
				t.Fatalf("read %d: %v", off, err)
			}
			if _, err := parseRead(res.Records); err != nil && !old {
				t.Fatalf("read %d returned bad batches: %v", off, err)
			}
			if off == end {
				break
			}
		}
		l.MaxTimestamp()
		l.OffsetForTimestamp(5)
		if !old {
			readAll(t, l, 1<<20)
		}
		res, err := l.Append(makeBatch(t, batchSpec{n: 2}), 0)
		if err != nil || res.BaseOffset != end {
			t.Fatalf("append after recovery: %+v %v (end %d)", res, err, end)
		}
	})
}

// FuzzAppend feeds arbitrary bytes to Append: either it fails with
// ErrCorrupt or ErrMessageTooLarge and the log is unchanged, or the bytes
// were valid batches and read back (and survive a reopen) as written.
func FuzzAppend(f *testing.F) {
	f.Add(makeBatch(f, batchSpec{n: 3, value: 5}))
	f.Add(append(makeBatch(f, batchSpec{n: 1}), makeBatch(f, batchSpec{n: 2, codec: codecZstd})...))
	f.Add(makeBatch(f, batchSpec{n: 2})[:70])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		dir := t.TempDir()
		cfg := testConfig()
		cfg.MaxMessageBytes = 4096
		cfg.SegmentBytes = 512
		l, err := Open(dir, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		mustAppend(t, l, makeBatch(t, batchSpec{n: 1}))
		size, end := l.Size(), l.EndOffset()
		res, err := l.Append(bytes.Clone(in), 3)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			if l.Size() != size || l.EndOffset() != end {
				t.Fatal("failed append changed the log")
			}
			return
		}
		if res.BaseOffset != end || l.Size() != size+int64(len(in)) {
			t.Fatalf("%+v, size %d", res, l.Size())
		}
		n := len(readAll(t, l, 1))
		l.Close()
		l2, err := Open(dir, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer l2.Close()
		if l2.EndOffset() != res.LastOffset+1 || len(readAll(t, l2, 1)) != n {
			t.Fatalf("reopened: end %d, want %d", l2.EndOffset(), res.LastOffset+1)
		}
	})
}
