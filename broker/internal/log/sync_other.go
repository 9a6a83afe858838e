//go:build !linux

package log

import "os"

// syncData makes a segment's appended bytes durable.
func syncData(f *os.File) error { return f.Sync() }
