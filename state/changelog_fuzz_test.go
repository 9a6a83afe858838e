package state_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/runnel-dev/runnel/state"
)

// FuzzParseWindowChangelogKey: any bytes either parse and re-encode to
// themselves, or fail with ErrCorruptChangelogKey; never a panic.
func FuzzParseWindowChangelogKey(f *testing.F) {
	f.Add(state.WindowChangelogKey([]byte("key"), 42, 7))
	f.Add([]byte{})
	f.Add(make([]byte, 11))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, start, seq, err := state.ParseWindowChangelogKey(b)
		if err != nil {
			if !errors.Is(err, state.ErrCorruptChangelogKey) {
				t.Fatalf("error %v does not wrap ErrCorruptChangelogKey", err)
			}
			return
		}
		if got := state.WindowChangelogKey(k, start, seq); !bytes.Equal(got, b) {
			t.Fatalf("round trip of %x gave %x", b, got)
		}
	})
}

// FuzzParseSessionChangelogKey is FuzzParseWindowChangelogKey for sessions.
func FuzzParseSessionChangelogKey(f *testing.F) {
	f.Add(state.SessionChangelogKey([]byte("key"), 1, 2))
	f.Add([]byte{})
	f.Add(make([]byte, 15))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, start, end, err := state.ParseSessionChangelogKey(b)
		if err != nil {
			if !errors.Is(err, state.ErrCorruptChangelogKey) {
				t.Fatalf("error %v does not wrap ErrCorruptChangelogKey", err)
			}
			return
		}
		if got := state.SessionChangelogKey(k, start, end); !bytes.Equal(got, b) {
			t.Fatalf("round trip of %x gave %x", b, got)
		}
	})
}
