package pebblestore_test

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/state/storetest"
)

// openDB opens a database on an in-memory file system, closed at the end
// of the test.
func openDB(t *testing.T, fs vfs.FS) *pebblestore.DB {
	t.Helper()
	db, err := pebblestore.Open("db", pebblestore.Options{FS: fs})
	storetest.Must(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// neighbours puts data in the stores around the one under test — same
// name in other tasks, other names in the same task — so that a store
// prefix that leaks shows up as extra results.
func neighbours(t *testing.T, db *pebblestore.DB, name string) {
	for _, task := range []string{"0_0", "0_1\x00", "0_10", "0_"} {
		b := db.NewBatch(task)
		for _, n := range []string{name, name + "\x00", name + "x", ""} {
			if task == "0_1" && n == name {
				continue
			}
			kv := b.OpenKeyValueStore(n)
			w, err := b.OpenWindowStore(n, state.WindowOptions{})
			storetest.Must(t, err)
			s, err := b.OpenSessionStore(n, state.SessionOptions{})
			storetest.Must(t, err)
			for _, k := range []string{"", "a", "\xff"} {
				storetest.Must(t, kv.Put([]byte(k), []byte("neighbour")))
				storetest.Must(t, w.Put([]byte(k), 40, []byte("neighbour")))
				storetest.Must(t, s.Put([]byte(k), 40, 45, []byte("neighbour")))
			}
		}
		storetest.Must(t, b.Commit(nil))
	}
}

func TestKeyValueStore(t *testing.T) {
	storetest.TestKeyValueStore(t, func(t *testing.T) state.KeyValueStore {
		db := openDB(t, vfs.NewMem())
		neighbours(t, db, "kv")
		return db.NewBatch("0_1").OpenKeyValueStore("kv")
	})
}

func TestWindowStore(t *testing.T) {
	storetest.TestWindowStore(t, func(t *testing.T, opts state.WindowOptions) state.WindowStore {
		db := openDB(t, vfs.NewMem())
		neighbours(t, db, "win")
		s, err := db.NewBatch("0_1").OpenWindowStore("win", opts)
		storetest.Must(t, err)
		return s
	})
}

func TestSessionStore(t *testing.T) {
	storetest.TestSessionStore(t, func(t *testing.T, opts state.SessionOptions) state.SessionStore {
		db := openDB(t, vfs.NewMem())
		neighbours(t, db, "ses")
		s, err := db.NewBatch("0_1").OpenSessionStore("ses", opts)
		storetest.Must(t, err)
		return s
	})
}

// TestWindowFetchBeyondObserved: a window starting after every window put
// is absent, without a read; one at or before it is found, across a
// commit and a rollback.
func TestWindowFetchBeyondObserved(t *testing.T) {
	db, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	storetest.Must(t, err)
	defer db.Close()
	b := db.NewBatch("0_0")
	ws, err := b.WindowStore("w", state.WindowOptions{Retention: time.Hour, SegmentInterval: time.Minute})
	storetest.Must(t, err)
	storetest.Must(t, ws.Put([]byte("k"), 1000, []byte("a")))
	storetest.Must(t, b.Commit(nil))
	for _, c := range []struct {
		start int64
		want  string
	}{{1000, "a"}, {2000, ""}, {0, ""}} {
		v, err := ws.Fetch([]byte("k"), c.start)
		storetest.Must(t, err)
		if string(v) != c.want {
			t.Fatalf("Fetch(k, %d) = %q, want %q", c.start, v, c.want)
		}
	}
	storetest.Must(t, ws.Put([]byte("k"), 3000, []byte("b")))
	storetest.Must(t, b.Rollback())
	v, err := ws.Fetch([]byte("k"), 3000)
	storetest.Must(t, err)
	if v != nil {
		t.Fatalf("a rolled back window: %q", v)
	}
}
