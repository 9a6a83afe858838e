package pebblestore

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

var bulkMB = flag.Int("bulk-mb", 256, "MB of keys and values BenchmarkRestore restores")

// BenchmarkRestore restores -bulk-mb MB of a changelog (1,000-byte values
// of random letters, a tenth overwrites, a twentieth tombstones, as
// bench/streambench's restore-bulk writes) into one task's key-value
// store of a database on disk, opened as the runtime opens it, three ways:
//
//   - batch: a write-only batch committed every 16 MiB (the runtime
//     before bulk batches): Pebble's WAL, memtable, flushes, compactions;
//   - merge: a bulk batch, committed once: sorted runs merged into
//     non-overlapping sstables, ingested at the commit;
//   - each-chunk: a bulk batch that ingests every 16 MiB chunk as its own
//     sstable (BulkOptions.IngestEachChunk): overlapping ingests into L0.
//
// It reports MB/s of keys and values until the restore committed
// ("restore-MB/s") and until Pebble has no compaction due or running
// ("settled-MB/s"), the process's CPU seconds per GB over the latter,
// and the files in L0 when the restore committed. Run it alone:
//
//	go test ./state/pebblestore -run '^$' -bench Restore -benchtime 1x -bulk-mb 1024
func BenchmarkRestore(b *testing.B) {
	for _, mode := range []string{"batch", "merge", "each-chunk"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				benchRestore(b, mode)
			}
		})
	}
}

func benchRestore(b *testing.B, mode string) {
	b.StopTimer()
	dir := b.TempDir()
	d, err := Open(dir, Options{Sync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	var batch *Batch
	switch mode {
	case "batch":
		batch = d.NewWriteBatch("1_0", 20<<20)
	case "merge":
		batch = d.NewBulkBatch("1_0", BulkOptions{})
	case "each-chunk":
		batch = d.NewBulkBatch("1_0", BulkOptions{IngestEachChunk: true})
	}
	kv := batch.OpenKeyValueStore("kv")

	rng := rand.New(rand.NewPCG(1, 2))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
	// Values from a pool made beforehand: making each of random letters
	// would cost more CPU than the restore. Pool values rarely meet in
	// a 4 KiB block, so the tables compress as little.
	values := make([][]byte, 4096)
	for i := range values {
		values[i] = make([]byte, 1000)
		for j := range values[i] {
			values[i][j] = letters[rng.IntN(len(letters))]
		}
	}
	n := int64(*bulkMB) * 1_000_000 / 1016
	var keys, payload int64
	b.StartTimer()
	start, cpu0 := time.Now(), cpuTime()
	for i := range n {
		var key []byte
		v := values[rng.IntN(len(values))]
		switch {
		case keys > 0 && i%20 == 19:
			key, v = fmt.Appendf(nil, "key-%011d", rng.Int64N(keys)), nil
		case keys > 0 && i%10 == 9:
			key = fmt.Appendf(nil, "key-%011d", rng.Int64N(keys))
		default:
			key = fmt.Appendf(nil, "key-%011d", keys)
			keys++
		}
		payload += int64(len(key) + len(v))
		if err := kv.Restore(key, v); err != nil {
			b.Fatal(err)
		}
		if mode == "batch" && batch.Len() >= 16<<20 {
			if err := batch.Commit(map[string]int64{"c-0": i + 1}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := batch.Commit(map[string]int64{"c-0": n}); err != nil {
		b.Fatal(err)
	}
	restored := time.Since(start)
	l0 := d.db.Metrics().Levels[0].NumFiles
	// Settled: no flush or compaction running for half a second (Pebble
	// schedules the next one as one ends, or as an ingestion lands);
	// the time is that of the first quiet look.
	deadline := time.Now().Add(10 * time.Minute)
	var quietSince time.Time
	var quietCPU time.Duration
	for quietSince.IsZero() || time.Since(quietSince) < 500*time.Millisecond {
		m := d.db.Metrics()
		switch {
		case m.Compact.NumInProgress > 0 || m.Flush.NumInProgress > 0:
			quietSince = time.Time{}
		case quietSince.IsZero():
			quietSince, quietCPU = time.Now(), cpuTime()
		}
		if time.Now().After(deadline) {
			b.Fatalf("compactions still running after 10 minutes:\n%s", m)
		}
		time.Sleep(20 * time.Millisecond) // polling Pebble's metrics
	}
	settled, cpu := quietSince.Sub(start), quietCPU-cpu0
	b.StopTimer()
	mb := float64(payload) / 1e6
	b.ReportMetric(mb/restored.Seconds(), "restore-MB/s")
	b.ReportMetric(mb/settled.Seconds(), "settled-MB/s")
	b.ReportMetric(cpu.Seconds()/(mb/1000), "CPU-s/GB")
	b.ReportMetric(float64(l0), "L0-files")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
