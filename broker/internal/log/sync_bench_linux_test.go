package log

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSyncedWrite appends 1 MiB chunks to a file. "nosync" never
// syncs (the page cache copy alone: what Kafka's acknowledgement waits
// for), "sync-at-end" fsyncs once after the last chunk (the same bytes'
// writeback in one go, done in this process rather than later by the
// kernel's flusher threads as for Kafka). The other modes fdatasync after
// each chunk, as a partition's group commit does at full speed: into a
// file that grows with each write (what a segment does today), into one
// whose blocks fallocate reserved ahead (keeping its size, or setting
// it), and into one whose blocks were written with zeros and synced
// before the timer started (no block allocation, no extent conversion,
// no size change at all: the floor for an fdatasync). It reports the
// process's system CPU per GB (getrusage), the part of the broker's CPU
// per GB in that the write path's file layout can change.
func BenchmarkSyncedWrite(b *testing.B) {
	const chunk = 1 << 20
	data := make([]byte, chunk)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, mode := range []string{"nosync", "sync-at-end", "grow", "fallocate-keepsize", "fallocate", "prezeroed"} {
		b.Run(mode, func(b *testing.B) {
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "seg"), os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			size := int64(b.N) * chunk
			switch mode {
			case "fallocate-keepsize":
				err = syscall.Fallocate(int(f.Fd()), 1 /* FALLOC_FL_KEEP_SIZE */, 0, size)
			case "fallocate":
				err = syscall.Fallocate(int(f.Fd()), 0, 0, size)
			case "prezeroed":
				for off := int64(0); off < size && err == nil; off += chunk {
					_, err = f.WriteAt(make([]byte, chunk), off)
				}
				if err == nil {
					err = f.Sync()
				}
			}
			if err != nil {
				b.Fatal(err)
			}
			var r0, r1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
			b.SetBytes(chunk)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := f.WriteAt(data, int64(i)*chunk); err != nil {
					b.Fatal(err)
				}
				if mode == "nosync" || mode == "sync-at-end" {
					continue
				}
				if err := syncData(f); err != nil {
					b.Fatal(err)
				}
			}
			if mode == "sync-at-end" {
				if err := syncData(f); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
			gb := float64(b.N) * chunk / 1e9
			b.ReportMetric(time.Duration(r1.Stime.Nano()-r0.Stime.Nano()).Seconds()/gb, "sys-s/GB")
			b.ReportMetric(time.Duration(r1.Utime.Nano()-r0.Utime.Nano()).Seconds()/gb, "user-s/GB")
		})
	}
}
