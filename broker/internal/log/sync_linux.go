package log

import (
	"errors"
	"os"
	"syscall"
)

// syncData makes a segment's appended bytes durable with fdatasync: the
// data and the metadata needed to read it back (the file size), without
// waiting on a journal commit for timestamps as fsync does. It is the
// call every acknowledged produce waits on.
func syncData(f *os.File) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := sc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if !errors.Is(serr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
