package pebblestore

import (
	"bytes"
	"testing"
)

// FuzzReadEscaped: readEscaped never panics on stored bytes, and what it
// accepts re-escapes to the bytes it consumed.
func FuzzReadEscaped(f *testing.F) {
	f.Add(appendEscaped(nil, []byte("a\x00b")))
	f.Add(append(appendEscaped(nil, nil), 1, 2, 3))
	f.Add([]byte{0})
	f.Add([]byte{0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		dec, rest, err := readEscaped(nil, b)
		if err != nil {
			return
		}
		consumed := b[:len(b)-len(rest)]
		if got := appendEscaped(nil, dec); !bytes.Equal(got, consumed) {
			t.Fatalf("readEscaped(%x) = %x; re-escaped %x, consumed %x", b, dec, got, consumed)
		}
	})
}

// FuzzKeyLayout: a store key decodes back to the task and store names it
// was made from, and sorts after its task prefix.
func FuzzKeyLayout(f *testing.F) {
	f.Add("0_1", "counts")
	f.Add("", "\x00\x01")
	f.Fuzz(func(t *testing.T, task, store string) {
		p := storePrefix(task, store, kindWindow)
		if !bytes.HasPrefix(p, taskPrefix(task)) {
			t.Fatalf("store prefix %x lacks task prefix", p)
		}
		gotTask, rest, err := readEscaped(nil, p[1:])
		if err != nil || string(gotTask) != task {
			t.Fatalf("task of %x: %q, %v", p, gotTask, err)
		}
		gotStore, rest, err := readEscaped(nil, rest[1:])
		if err != nil || string(gotStore) != store || !bytes.Equal(rest, []byte{kindWindow}) {
			t.Fatalf("store of %x: %q, rest %x, %v", p, gotStore, rest, err)
		}
	})
}
