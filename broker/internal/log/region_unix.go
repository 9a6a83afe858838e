//go:build unix

package log

import (
	"fmt"
	"os"
	"syscall"
)

// dupFile returns a new descriptor of f's open file: it keeps the inode
// (and so the bytes) after f is closed and its name removed or replaced.
// It fails with os.ErrClosed when f is closed.
func dupFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	// Control holds a reference to f's descriptor while it runs, so a
	// concurrent Close cannot hand the number to another file first.
	var fd int
	var dupErr error
	if err := rc.Control(func(raw uintptr) {
		syscall.ForkLock.RLock()
		fd, dupErr = syscall.Dup(int(raw))
		if dupErr == nil {
			syscall.CloseOnExec(fd)
		}
		syscall.ForkLock.RUnlock()
	}); err != nil {
		// Control fails only when f is closed (its segment deleted), and
		// then with the poll package's "use of closed file", which is not
		// os.ErrClosed: say it in the terms ReadRegion retries on.
		return nil, fmt.Errorf("%w: %w", os.ErrClosed, err)
	}
	if dupErr != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoPin, dupErr)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}
