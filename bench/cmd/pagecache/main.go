//go:build linux

// Command pagecache measures what writing a file through the page cache
// costs when the kernel must find a new page for every write, against
// writing while the pages of what was written a little earlier are
// dropped (POSIX_FADV_DONTNEED) so later writes reuse them — the choice
// behind the broker's page cache drop-behind (bench/README.md, "Page cache
// drop-behind").
//
//	go run ./cmd/pagecache -mb 3000 -keep -1    # keep every page
//	go run ./cmd/pagecache -mb 3000 -keep 256   # drop what is 256 MB behind
//
// It writes -mb MB in -chunk byte writes, fdatasyncs every -sync MB, and
// prints MB/s and the process's CPU seconds per GB written. Linux only.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	total := flag.Int64("mb", 3000, "MB to write")
	keep := flag.Int64("keep", -1, "MB behind the last fdatasync to keep cached; -1 keeps every page")
	chunk := flag.Int("chunk", 64<<10, "bytes per write")
	syncEvery := flag.Int64("sync", 16, "fdatasync every this many MB")
	dir := flag.String("dir", os.TempDir(), "directory for the file (removed after)")
	flag.Parse()
	if err := run(*dir, *total<<20, *keep, *chunk, *syncEvery<<20); err != nil {
		fmt.Fprintln(os.Stderr, "pagecache:", err)
		os.Exit(1)
	}
}

func run(dir string, total, keepMB int64, chunk int, syncEvery int64) error {
	f, err := os.CreateTemp(dir, "pagecache-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	fd := int(f.Fd())
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i)
	}
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	var off, synced, dropped int64
	for off < total {
		n, err := f.WriteAt(buf, off)
		if err != nil {
			return err
		}
		off += int64(n)
		if off-synced < syncEvery && off < total {
			continue
		}
		if err := unix.Fdatasync(fd); err != nil {
			return err
		}
		synced = off
		if to := synced - keepMB<<20; keepMB >= 0 && to > dropped {
			if err := unix.Fadvise(fd, dropped, to-dropped, unix.FADV_DONTNEED); err != nil {
				return err
			}
			dropped = to
		}
	}
	elapsed := time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := func(a, b syscall.Timeval) float64 { return float64(b.Nano()-a.Nano()) / 1e9 }
	gb := float64(off) / 1e9
	user, sys := cpu(before.Utime, after.Utime), cpu(before.Stime, after.Stime)
	fmt.Printf("%s keep=%dMB chunk=%d: %.0f MB/s, CPU %.2f s/GB (system %.2f)\n",
		filepath.Base(dir), keepMB, chunk, gb*1000/elapsed.Seconds(), (user+sys)/gb, sys/gb)
	return nil
}
