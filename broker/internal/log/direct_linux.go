package log

import (
	"errors"
	"io"
	"os"
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

// pwritev writes bufs at off in f with one system call where it can.
func pwritev(f *os.File, bufs [][]byte, off int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for len(bufs) > 0 {
		var n int
		var werr error
		if cerr := rc.Write(func(fd uintptr) bool {
			n, werr = unix.Pwritev(int(fd), bufs, off)
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
