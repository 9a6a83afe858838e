package log

import (
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkAppend appends batches of 100 records of 100 bytes, without
// fsync (flush.messages large) and with a group-committing flusher
// running alongside as the broker's high-watermark loop does.
func BenchmarkAppend(b *testing.B) {
	batch := makeBatch(b, batchSpec{n: 100, value: 100})
	for _, mode := range []string{"nosync", "groupcommit"} {
		b.Run(mode, func(b *testing.B) {
			cfg := testConfig()
			if mode == "nosync" {
				cfg.FlushMessages = 1 << 62
			}
			l := openLog(b, b.TempDir(), cfg)
			var stop atomic.Bool
			var wg sync.WaitGroup
			if mode == "groupcommit" {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						l.WaitFlushed(l.EndOffset())
					}
				}()
			}
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := l.Append(batch, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			stop.Store(true)
			wg.Wait()
			b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkRead reads a 100 MB log from start to end in 1 MB fetches,
// as a catching-up consumer does.
func BenchmarkRead(b *testing.B) {
	batch := makeBatch(b, batchSpec{n: 100, value: 100})
	cfg := testConfig()
	cfg.FlushMessages = 1 << 62
	cfg.SegmentBytes = 32 << 20
	l := openLog(b, b.TempDir(), cfg)
	for l.Size() < 100<<20 {
		if _, err := l.Append(batch, 0); err != nil {
			b.Fatal(err)
		}
	}
	end := l.EndOffset()
	b.ReportAllocs()
	b.ResetTimer()
	var bytes int64
	off := int64(0)
	for i := 0; i < b.N; i++ {
		res, err := l.Read(off, 1<<20, end)
		if err != nil {
			b.Fatal(err)
		}
		bytes += int64(len(res.Records))
		off += int64(len(res.Records) / len(batch) * 100)
		if off >= end {
			off = 0
		}
	}
	b.SetBytes(bytes / int64(b.N))
}
