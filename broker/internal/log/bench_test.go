package log

import (
	"fmt"
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

// BenchmarkFlushAcrossLogs makes an append durable in each of many logs
// (partitions), one batch of 10 records of 1 KiB each, as a broker does
// when producers write to many partitions at once; one op is one such
// round. It compares how the fsyncs are issued:
//
//   - concurrent: every log flushes on its own goroutine, as each
//     partition's high-watermark loop does;
//   - serial: one flusher syncs every log with pending data in turn (a
//     group commit across partitions by one goroutine);
//   - boundedN: at most N flushes at a time.
//
// The fsyncs of different files share the filesystem journal's commits
// only when they run at the same time: on ext4 one goroutine syncing the
// logs in turn took 2-4x as long per round as concurrent flushes, which
// is why each partition flushes on its own (bench/README.md, "Where
// acks=all produces wait").
func BenchmarkFlushAcrossLogs(b *testing.B) {
	batch := makeBatch(b, batchSpec{n: 10, value: 1024})
	for _, logs := range []int{6, 24, 200} {
		for _, mode := range []string{"concurrent", "serial", "bounded8"} {
			b.Run(fmt.Sprintf("logs=%d/%s", logs, mode), func(b *testing.B) {
				var bound int
				fmt.Sscanf(mode, "bounded%d", &bound)
				ls := make([]*Log, logs)
				for i := range ls {
					ls[i] = openLog(b, b.TempDir(), testConfig())
				}
				sem := make(chan struct{}, max(bound, 1))
				b.SetBytes(int64(len(batch) * logs))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for _, l := range ls {
						if _, err := l.Append(batch, 0); err != nil {
							b.Fatal(err)
						}
					}
					if mode == "serial" {
						for _, l := range ls {
							if err := l.WaitFlushed(l.EndOffset()); err != nil {
								b.Fatal(err)
							}
						}
						continue
					}
					var wg sync.WaitGroup
					for _, l := range ls {
						wg.Go(func() {
							if bound > 0 {
								sem <- struct{}{}
								defer func() { <-sem }()
							}
							if err := l.WaitFlushed(l.EndOffset()); err != nil {
								b.Error(err)
							}
						})
					}
					wg.Wait()
				}
			})
		}
	}
}
