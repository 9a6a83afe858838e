//go:build !linux

package log

import "os"

// directFile is a segment file opened again with O_DIRECT; there is none
// on this platform.
type directFile struct{}

func openDirectRead(*os.File, int64, int64) (directFile, bool, error) {
	return directFile{}, false, errNoDirect
}

func (directFile) readAt([]byte, int64) (int, error) { return 0, errNoDirect }

func (directFile) close() {}
