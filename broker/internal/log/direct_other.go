//go:build !linux

package log

import (
	"errors"
	"os"
)

// errNoDirect reports a platform without O_DIRECT: appends go through
// the page cache whatever SetDirectWrites says.
var errNoDirect = errors.New("log: direct writes not supported here")

func openDirect(string) (*os.File, error) { return nil, errNoDirect }

func isDirectRefusal(error) bool { return false }

// pwritevDSync writes nothing: synchronized writes are Linux's here.
func pwritevDSync(*os.File, [][]byte, int64) (bool, error) { return false, nil }

// pwritev writes bufs at off in f.
func pwritev(f *os.File, bufs [][]byte, off int64) error {
	for _, b := range bufs {
		if _, err := f.WriteAt(b, off); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}
