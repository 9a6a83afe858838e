//go:build !linux

package log

import "os"

// commitRing is Linux's io_uring (ring_linux.go); elsewhere there is none
// and every synchronized write is its caller's own.
type commitRing struct{}

func newCommitRing() *commitRing { return nil }

func (c *commitRing) usable() bool { return false }

func (c *commitRing) close() {}

func (c *commitRing) taken() int64 { return 0 }

func (c *commitRing) write(f *os.File, bufs [][]byte, off int64, dsync bool) (bool, error) {
	return false, nil
}
