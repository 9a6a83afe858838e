//go:build unix

package log

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A segment file closed by its deletion before a fetch pins it fails the
// pin with os.ErrClosed, the error ReadRegion looks again on; any other
// error reached the client as UNKNOWN_SERVER_ERROR.
func TestDupClosedFileIsErrClosed(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "segment"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := dupFile(f); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("dupFile of a closed file: %v, want os.ErrClosed", err)
	}
}
