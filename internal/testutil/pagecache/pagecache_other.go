//go:build !linux

package pagecache

import "testing"

// Resident is Linux's alone.
func Resident(t testing.TB, path string) []bool {
	t.Skip("page cache residency is read on Linux only")
	return nil
}

// SkipUnlessDroppable skips: only Linux drops pages on advice here.
func SkipUnlessDroppable(t testing.TB, dir string) {
	t.Skip("page cache drops are Linux's alone")
}
