//go:build unix

package broker

import (
	"os"
	"syscall"
)

// flock takes an exclusive advisory lock on f without waiting; held by
// another open file it fails with EWOULDBLOCK.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}
