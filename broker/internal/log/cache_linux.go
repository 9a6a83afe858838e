package log

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropPages advises the kernel to drop the clean cached pages of f's
// bytes [off, off+n) (whole pages only).
func dropPages(f *os.File, off, n int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var aerr error
	// Control holds f's descriptor while the advice runs, so a
	// concurrent Close cannot hand its number to another file.
	if err := rc.Control(func(fd uintptr) {
		aerr = unix.Fadvise(int(fd), off, n, unix.FADV_DONTNEED)
	}); err != nil {
		return err
	}
	return aerr
}
