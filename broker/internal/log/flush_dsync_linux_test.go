package log

import (
	"bytes"
	"testing"
)

// The flush of a log with direct writes and a tail cache writes what the
// cache holds with RWF_DSYNC and makes no fdatasync, when every byte
// below that run is durable already; when the appender wrote bytes of
// its own since the last flush (more than writeBackMax pending), those
// are not durable and the flush must fdatasync them; and where the
// kernel lacks RWF_DSYNC it writes and syncs as before. Each time the
// file, read back after the log is reopened, holds what was appended.
func TestFlushSynchronizedWrite(t *testing.T) {
	for _, tc := range []struct {
		name      string
		batches   int // of about 1 MB each between flushes
		noDSync   bool
		wantSyncs bool
	}{
		// Where the kernel's synchronized writes are not trusted
		// (dsyncTrusted), every flush syncs.
		{name: "one run", batches: 1, wantSyncs: noDSync.Load()},
		{name: "appender wrote", batches: writeBackMax/(1<<20) + 2, wantSyncs: true},
		{name: "no RWF_DSYNC", batches: 1, noDSync: true, wantSyncs: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.noDSync {
				old := noDSync.Load()
				noDSync.Store(true)
				defer noDSync.Store(old)
			}
			dir := t.TempDir()
			cfg := testConfig()
			cfg.MaxMessageBytes = 2 << 20
			l := openLog(t, dir, cfg)
			l.SetDirectWrites(true)
			l.SetTailCache(testTailCache(t, 2*writeBackMax))
			var want []byte
			for round := range 3 {
				for i := range tc.batches {
					b := makeBatch(t, batchSpec{n: 4, value: 250_000 + 1000*i + round, firstTs: 1})
					want = append(want, b...)
					mustAppend(t, l, b)
				}
				if l.active.dio.failed {
					t.Skip("no O_DIRECT on this file system: no write-back")
				}
				// An odd tail, so the run ends in a partial block.
				b := makeBatch(t, batchSpec{n: 1, value: 777 + round, firstTs: 1})
				want = append(want, b...)
				mustAppend(t, l, b)
				syncs := l.syncs.Load()
				if err := l.WaitFlushed(l.EndOffset()); err != nil {
					t.Fatal(err)
				}
				if got := l.syncs.Load() - syncs; (got > 0) != tc.wantSyncs {
					t.Fatalf("round %d: the flush made %d fdatasyncs, want some: %v", round, got, tc.wantSyncs)
				}
				if l.active.synced != l.active.pub.size {
					t.Fatalf("round %d: %d of %d bytes known durable after the flush", round, l.active.synced, l.active.pub.size)
				}
			}
			// The log gives the batches their offsets: what it reads
			// is the appended bytes with those, as long.
			read := readEverything(t, l)
			if len(read) != len(want) {
				t.Fatalf("read %d bytes, appended %d", len(read), len(want))
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l2 := openLog(t, dir, cfg)
			if got := readEverything(t, l2); !bytes.Equal(got, read) {
				t.Fatalf("reopened: read %d bytes, %d before", len(got), len(read))
			}
		})
	}
}

// Only kernels from 6.7 on, whose ext4 syncs the size an O_DSYNC direct
// write extends, are trusted to make a synchronized write the fsync.
func TestDSyncTrusted(t *testing.T) {
	for release, want := range map[string]bool{
		"6.18.44-fc-v1272":      true,
		"6.7.0":                 true,
		"7.0.1-arch1":           true,
		"6.6.30-generic":        false,
		"5.15.0-91-generic":     false,
		"4.18.0-513.el8.x86_64": false,
		"":                      false,
		"garbage":               false,
		"6":                     false,
		"10.2.3-rc1+":           true,
		"6.1.0-28-cloud-amd64":  false,
	} {
		if got := dsyncTrusted(release); got != want {
			t.Errorf("dsyncTrusted(%q) = %v, want %v", release, got, want)
		}
	}
}
