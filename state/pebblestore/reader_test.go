package pebblestore_test

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/storetest"
)

// TestReaderSeesCommittedOnly checks that a Reader reads what the task's
// Batch committed, never its uncommitted writes, for every store kind.
func TestReaderSeesCommittedOnly(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	neighbours(t, db, "s")
	wopts := state.WindowOptions{Retention: 100 * time.Millisecond, SegmentInterval: 10 * time.Millisecond}
	sopts := state.SessionOptions{Retention: 100 * time.Millisecond, SegmentInterval: 10 * time.Millisecond}
	b := db.NewBatch("0_1")
	kv := b.OpenKeyValueStore("s")
	w, err := b.OpenWindowStore("s", wopts)
	storetest.Must(t, err)
	s, err := b.OpenSessionStore("s", sopts)
	storetest.Must(t, err)
	storetest.Must(t, kv.Put([]byte("a"), []byte("1")))
	storetest.Must(t, w.Put([]byte("a"), 5, []byte("w5")))
	storetest.Must(t, s.Put([]byte("a"), 5, 8, []byte("s5")))
	storetest.Must(t, b.Commit(nil))
	// Uncommitted: a new key, a changed value, a window that expires the
	// committed one.
	storetest.Must(t, kv.Put([]byte("b"), []byte("2")))
	storetest.Must(t, kv.Put([]byte("a"), []byte("changed")))
	storetest.Must(t, w.Put([]byte("a"), 500, []byte("w500")))
	storetest.Must(t, s.Put([]byte("a"), 500, 500, []byte("s500")))

	read := func() (kvs, windows, sessions []string) {
		r := db.Reader("0_1")
		defer func() { storetest.Must(t, r.Close()) }()
		it := r.KeyValueStore("s").All()
		for it.Next() {
			kvs = append(kvs, string(it.Key())+"="+string(it.Value()))
		}
		storetest.Must(t, it.Close())
		rw, err := r.WindowStore("s", wopts)
		storetest.Must(t, err)
		wit := rw.FetchRange([]byte("a"), 0, 1000)
		for wit.Next() {
			windows = append(windows, string(wit.Value()))
		}
		storetest.Must(t, wit.Close())
		rs, err := r.SessionStore("s", sopts)
		storetest.Must(t, err)
		sit := rs.Fetch([]byte("a"))
		for sit.Next() {
			sessions = append(sessions, string(sit.Value()))
		}
		storetest.Must(t, sit.Close())
		return kvs, windows, sessions
	}
	check := func(what string, got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: got %q, want %q", what, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: got %q, want %q", what, got, want)
			}
		}
	}
	kvs, windows, sessions := read()
	check("key-values before commit", kvs, "a=1")
	check("windows before commit", windows, "w5")
	check("sessions before commit", sessions, "s5")

	storetest.Must(t, b.Commit(nil))
	kvs, windows, sessions = read()
	check("key-values after commit", kvs, "a=changed", "b=2")
	check("windows after commit", windows, "w500") // w5 expired with the committed observed time
	check("sessions after commit", sessions, "s500")
}
