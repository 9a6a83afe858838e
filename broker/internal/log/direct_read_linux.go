package log

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// directFile is a segment file opened again with O_DIRECT; the zero
// value is none.
type directFile struct{ f *os.File }

// openDirectRead opens the file f is open on (the same inode, through
// /proc/self/fd, so a segment deleted or swapped away meanwhile is still
// the one read) with O_DIRECT, unless cachestat finds at least half of
// the pages of [at, at+n) in the page cache: then cached is set and
// nothing is opened. It fails with errNoDirect where the kernel cannot
// tell what is cached (before Linux 6.5) or the file system refuses
// O_DIRECT, and with os.ErrClosed when f was closed.
func openDirectRead(f *os.File, at, n int64) (file directFile, cached bool, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return directFile{}, false, err
	}
	var openErr error
	fd := -1
	// Control holds a reference to f's descriptor while it runs, so its
	// number names f's file until the open is done.
	if err := rc.Control(func(raw uintptr) {
		var cs unix.Cachestat_t
		if err := unix.Cachestat(uint(raw), &unix.CachestatRange{Off: uint64(at), Len: uint64(n)}, &cs, 0); err != nil {
			openErr = errNoDirect
			return
		}
		if pages := (n + pageSize - 1) / pageSize; int64(cs.Cache)*2 >= pages {
			cached = true
			return
		}
		fd, openErr = unix.Open(fmt.Sprintf("/proc/self/fd/%d", raw), unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
		if errors.Is(openErr, syscall.EINVAL) || errors.Is(openErr, syscall.ENOENT) {
			openErr = errNoDirect // no O_DIRECT here, or no /proc
		}
	}); err != nil {
		return directFile{}, false, fmt.Errorf("%w: %w", os.ErrClosed, err)
	}
	if openErr != nil {
		return directFile{}, false, openErr
	}
	if cached {
		return directFile{}, true, nil
	}
	return directFile{f: os.NewFile(uintptr(fd), f.Name())}, false, nil
}

// readAt reads b at off until b is full or the file ends, and returns how
// much it read. b, off and len(b) are block-aligned.
func (d directFile) readAt(b []byte, off int64) (int, error) {
	n, err := d.f.ReadAt(b, off)
	if err == io.EOF {
		err = nil
	}
	if err != nil {
		return n, fmt.Errorf("log: direct read: %w", err)
	}
	return n, nil
}

func (d directFile) close() {
	if d.f != nil {
		d.f.Close()
	}
}
