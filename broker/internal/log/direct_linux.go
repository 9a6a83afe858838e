package log

import (
	"errors"
	"fmt"
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

// noDSync is set where a synchronized write is not trusted to be the
// fsync: before Linux 6.7, and once the kernel refused RWF_DSYNC.
var noDSync atomic.Bool

func init() { noDSync.Store(!dsyncTrusted(kernelRelease())) }

// dsyncTrusted reports whether a kernel release (uname -r) makes the file
// size an O_DSYNC direct write extends durable before the write returns.
// ext4 did not until Linux 6.7 (commit 91562895f803, "ext4: properly sync
// file size update after O_SYNC direct IO"): its size update came after
// the sync, so a power cut could leave the file shorter than a write it
// had acknowledged. Stable kernels got the fix at different points, so
// only 6.7 and later are trusted; others write and then fdatasync.
func dsyncTrusted(release string) bool {
	var major, minor int
	if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 6 || major == 6 && minor >= 7
}

// kernelRelease is the running kernel's release, "" if unknown.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// pwritevDSync is pwritev with RWF_DSYNC: once it returns, the bytes
// written and the metadata needed to read them back are durable, as with
// a write and an fdatasync of the same range. It reports false, having
// written nothing, where that is not to be trusted (noDSync) or the
// kernel lacks pwritev2 or the flag (before Linux 4.7).
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
		bufs = consumed(bufs, n)
	}
	return nil
}

// consumed returns bufs without their first n bytes, changing bufs'
// elements: the caller passes a copy it owns.
func consumed(bufs [][]byte, n int) [][]byte {
	for n > 0 && len(bufs) > 0 {
		if n < len(bufs[0]) {
			bufs[0] = bufs[0][n:]
			break
		}
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	return bufs
}
