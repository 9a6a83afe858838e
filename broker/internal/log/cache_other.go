//go:build !linux

package log

import (
	"errors"
	"os"
)

// dropPages is Linux's alone: elsewhere the kernel manages the cache.
func dropPages(*os.File, int64, int64) error { return errors.ErrUnsupported }
