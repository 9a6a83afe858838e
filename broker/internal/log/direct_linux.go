package log

import (
	"errors"
	"os"
	"syscall"
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
