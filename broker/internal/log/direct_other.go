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
