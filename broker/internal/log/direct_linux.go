package log

import (
	"errors"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// errNoDirect reports a file system without O_DIRECT.
var errNoDirect = errors.New("log: direct writes not supported here")

// isDirectRefusal reports an O_DIRECT write the device refused for its
// alignment.
func isDirectRefusal(err error) bool { return errors.Is(err, syscall.EINVAL) }

// openDirect opens path for writing with O_DIRECT.
func openDirect(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_DIRECT, 0)
	if errors.Is(err, syscall.EINVAL) {
		return nil, errNoDirect
	}
	return f, err
}

// noDSync is set once the kernel refused RWF_DSYNC (before Linux 4.7).
var noDSync atomic.Bool

// pwritevDSync is pwritev with RWF_DSYNC: once it returns, the bytes
// written and the metadata needed to read them back are durable, as with
// a write and an fdatasync of the same range. It reports false, having
// written nothing, where the kernel lacks pwritev2 or the flag.
func pwritevDSync(f *os.File, bufs [][]byte, off int64) (bool, error) {
	if noDSync.Load() {
		return false, nil
	}
	err := writeAll(f, bufs, off, func(fd int, bufs [][]byte, off int64) (int, error) {
		return unix.Pwritev2(fd, bufs, off, unix.RWF_DSYNC)
	})
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		noDSync.Store(true)
		return false, nil
	}
	return err == nil, err
}

// pwritev writes bufs at off in f with one system call where it can.
func pwritev(f *os.File, bufs [][]byte, off int64) error {
	return writeAll(f, bufs, off, unix.Pwritev)
}

// writeAll writes bufs at off in f with write, which writes some of them
// as pwritev(2) does, until every byte is written.
func writeAll(f *os.File, bufs [][]byte, off int64, write func(fd int, bufs [][]byte, off int64) (int, error)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	bufs = slices.Clone(bufs) // a short write consumes it below
	for len(bufs) > 0 {
		var n int
		var werr error
		if cerr := rc.Write(func(fd uintptr) bool {
			n, werr = write(int(fd), bufs, off)
			return true
		}); cerr != nil {
			return cerr
		}
		if werr != nil {
			return werr
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		off += int64(n)
		for n > 0 {
			if n < len(bufs[0]) {
				bufs[0] = bufs[0][n:]
				break
			}
			n -= len(bufs[0])
			bufs = bufs[1:]
		}
	}
	return nil
}
