package pebblestore_test

import (
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/state/storetest"
)

// TestCrashKeepsDataWithPosition simulates a machine crash that loses
// unsynced writes: the store comes back at a commit, with the position of
// that same commit, never data of one commit with the position of another.
func TestCrashKeepsDataWithPosition(t *testing.T) {
	fs := vfs.NewStrictMem()
	db, err := pebblestore.Open("", pebblestore.Options{FS: fs, Sync: true})
	storetest.Must(t, err)
	b := db.NewBatch("0_0")
	kv := b.OpenKeyValueStore("kv")
	storetest.Must(t, kv.Put([]byte("k"), []byte("1")))
	storetest.Must(t, b.Commit(map[string]int64{"c-0": 1}))

	// Later commits are lost in the crash.
	fs.SetIgnoreSyncs(true)
	storetest.Must(t, kv.Put([]byte("k"), []byte("2")))
	storetest.Must(t, b.Commit(map[string]int64{"c-0": 2}))
	storetest.Must(t, db.Close()) // its writes are unsynced too, and lost
	fs.ResetToSyncedState()
	fs.SetIgnoreSyncs(false)

	db, err = pebblestore.Open("", pebblestore.Options{FS: fs})
	storetest.Must(t, err)
	defer db.Close()
	off, ok, err := db.Position("0_0", "c-0")
	storetest.Must(t, err)
	v, err := db.NewBatch("0_0").OpenKeyValueStore("kv").Get([]byte("k"))
	storetest.Must(t, err)
	if !ok || off != 1 || string(v) != "1" {
		t.Fatalf("after crash: position %d (%t), value %q; want 1, \"1\"", off, ok, v)
	}
}

// TestCommitNoSyncThenSyncWAL: batches committed without sync survive a
// crash once SyncWAL has returned, and are lost (all of them, each
// atomically) if the crash comes before.
func TestCommitNoSyncThenSyncWAL(t *testing.T) {
	for _, synced := range []bool{true, false} {
		fs := vfs.NewStrictMem()
		db, err := pebblestore.Open("", pebblestore.Options{FS: fs, Sync: true})
		storetest.Must(t, err)
		for _, task := range []string{"0_0", "0_1"} {
			b := db.NewBatch(task)
			storetest.Must(t, b.OpenKeyValueStore("kv").Put([]byte("k"), []byte(task)))
			storetest.Must(t, b.CommitNoSync(map[string]int64{"c-" + task: 7}))
		}
		if synced {
			storetest.Must(t, db.SyncWAL())
		}
		fs.SetIgnoreSyncs(true)
		storetest.Must(t, db.Close())
		fs.ResetToSyncedState()
		fs.SetIgnoreSyncs(false)

		db, err = pebblestore.Open("", pebblestore.Options{FS: fs})
		storetest.Must(t, err)
		for _, task := range []string{"0_0", "0_1"} {
			off, ok, err := db.Position(task, "c-"+task)
			storetest.Must(t, err)
			v, err := db.NewBatch(task).OpenKeyValueStore("kv").Get([]byte("k"))
			storetest.Must(t, err)
			if synced && (!ok || off != 7 || string(v) != task) {
				t.Fatalf("synced, after crash: task %s position %d (%t), value %q", task, off, ok, v)
			}
			if !synced && (ok || v != nil) {
				t.Fatalf("unsynced, after crash: task %s position %d (%t), value %q; want nothing", task, off, ok, v)
			}
		}
		storetest.Must(t, db.Close())
	}
}
