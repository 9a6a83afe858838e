package pebblestore_test

import (
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/state/storetest"
)

var segOpts = state.WindowOptions{Retention: 100 * time.Millisecond, SegmentInterval: 50 * time.Millisecond}

// TestCommitReopen checks that committed writes and positions survive
// closing and reopening the database, and uncommitted ones do not.
func TestCommitReopen(t *testing.T) {
	fs := vfs.NewMem()
	db, err := pebblestore.Open("db", pebblestore.Options{FS: fs})
	storetest.Must(t, err)
	b := db.NewBatch("1_0")
	kv := b.OpenKeyValueStore("kv")
	w, err := b.OpenWindowStore("win", segOpts)
	storetest.Must(t, err)
	storetest.Must(t, kv.Put([]byte("a"), []byte("1")))
	storetest.Must(t, w.Put([]byte("a"), 160, []byte("w")))
	storetest.Must(t, b.Commit(map[string]int64{"app-kv-changelog-0": 42, "app-win-changelog-0": 7}))
	storetest.Must(t, kv.Put([]byte("b"), []byte("uncommitted")))
	storetest.Must(t, w.Put([]byte("a"), 400, []byte("uncommitted")))
	storetest.Must(t, db.Close())

	db, err = pebblestore.Open("db", pebblestore.Options{FS: fs})
	storetest.Must(t, err)
	defer db.Close()
	b = db.NewBatch("1_0")
	if off, ok, err := b.Position("app-kv-changelog-0"); err != nil || !ok || off != 42 {
		t.Fatalf("Position = %d, %t, %v; want 42", off, ok, err)
	}
	if off, ok, err := db.Position("1_0", "app-win-changelog-0"); err != nil || !ok || off != 7 {
		t.Fatalf("Position = %d, %t, %v; want 7", off, ok, err)
	}
	if _, ok, err := db.Position("1_1", "app-win-changelog-0"); err != nil || ok {
		t.Fatalf("another task's Position found: %t, %v", ok, err)
	}
	kv = b.OpenKeyValueStore("kv")
	got, err := storetest.ReadAll(kv.All())
	storetest.Must(t, err)
	if want := []storetest.KV{{Key: "a", Value: "1"}}; !slices.Equal(got, want) {
		t.Fatalf("after reopen kv = %v, want %v", got, want)
	}
	// Observed stream time (160) came back with the data: a put at 10 is
	// expired, while 60 (segment 1) is live.
	w, err = b.OpenWindowStore("win", segOpts)
	storetest.Must(t, err)
	storetest.Must(t, w.Put([]byte("a"), 10, []byte("late")))
	storetest.Must(t, w.Put([]byte("a"), 60, []byte("live")))
	wins, err := storetest.ReadWindows(w.All())
	storetest.Must(t, err)
	if want := []storetest.Window{{Key: "a", Start: 60, Value: "live"}, {Key: "a", Start: 160, Value: "w"}}; !slices.Equal(wins, want) {
		t.Fatalf("after reopen windows = %v, want %v", wins, want)
	}
}

// TestRollback checks that Rollback discards data and meta back to the
// last commit.
func TestRollback(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	b := db.NewBatch("0_0")
	kv := b.OpenKeyValueStore("kv")
	w, err := b.OpenWindowStore("win", segOpts)
	storetest.Must(t, err)
	storetest.Must(t, kv.Put([]byte("a"), []byte("1")))
	storetest.Must(t, w.Put([]byte("k"), 10, []byte("1")))
	storetest.Must(t, b.Commit(map[string]int64{"c-0": 1}))

	storetest.Must(t, kv.Put([]byte("a"), []byte("2")))
	storetest.Must(t, w.Put([]byte("k"), 1000, []byte("2"))) // expires 10
	if v, _ := w.Fetch([]byte("k"), 10); v != nil {
		t.Fatalf("window 10 not expired in the batch: %q", v)
	}
	storetest.Must(t, b.Rollback())
	if v, _ := kv.Get([]byte("a")); string(v) != "1" {
		t.Fatalf("after Rollback Get = %q, want 1", v)
	}
	if v, _ := w.Fetch([]byte("k"), 10); string(v) != "1" {
		t.Fatalf("after Rollback window 10 = %q, want 1", v)
	}
	// Observed time rolled back too: 20 is live again.
	storetest.Must(t, w.Put([]byte("k"), 20, []byte("3")))
	if v, _ := w.Fetch([]byte("k"), 20); string(v) != "3" {
		t.Fatalf("window 20 = %q", v)
	}
}

// TestIteratorAcrossCommit checks that an iterator opened before a commit
// keeps reading what it saw.
func TestIteratorAcrossCommit(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	b := db.NewBatch("0_0")
	kv := b.OpenKeyValueStore("kv")
	for _, k := range []string{"a", "b", "c"} {
		storetest.Must(t, kv.Put([]byte(k), []byte(k)))
	}
	it := kv.All()
	if !it.Next() {
		t.Fatal("empty iterator")
	}
	storetest.Must(t, b.Commit(nil))
	storetest.Must(t, kv.Put([]byte("bb"), []byte("bb")))
	storetest.Must(t, b.Commit(nil))
	rest, err := storetest.ReadAll(it)
	storetest.Must(t, err)
	if want := []storetest.KV{{Key: "b", Value: "b"}, {Key: "c", Value: "c"}}; !slices.Equal(rest, want) {
		t.Fatalf("iterator after commit saw %v, want %v", rest, want)
	}
}

// TestDropTask checks that dropping a task removes its data and positions
// and nothing of other tasks.
func TestDropTask(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	for _, task := range []string{"0_1", "0_10"} {
		b := db.NewBatch(task)
		storetest.Must(t, b.OpenKeyValueStore("kv").Put([]byte("a"), []byte(task)))
		storetest.Must(t, b.Commit(map[string]int64{"c-1": 5}))
	}
	storetest.Must(t, db.DropTask("0_1"))
	if _, ok, _ := db.Position("0_1", "c-1"); ok {
		t.Fatal("dropped task kept its position")
	}
	if v, _ := db.NewBatch("0_1").OpenKeyValueStore("kv").Get([]byte("a")); v != nil {
		t.Fatalf("dropped task kept %q", v)
	}
	if v, _ := db.NewBatch("0_10").OpenKeyValueStore("kv").Get([]byte("a")); string(v) != "0_10" {
		t.Fatalf("other task lost its data: %q", v)
	}
	if _, ok, _ := db.Position("0_10", "c-1"); !ok {
		t.Fatal("other task lost its position")
	}
}

// TestDuplicateSeqSurvives checks that a window store retaining duplicates
// does not reuse sequence numbers after a reopen, which would overwrite
// entries.
func TestDuplicateSeqSurvives(t *testing.T) {
	fs := vfs.NewMem()
	opts := segOpts
	opts.RetainDuplicates = true
	for round := range 2 {
		db, err := pebblestore.Open("db", pebblestore.Options{FS: fs})
		storetest.Must(t, err)
		b := db.NewBatch("0_0")
		w, err := b.OpenWindowStore("join", opts)
		storetest.Must(t, err)
		storetest.Must(t, w.Put([]byte("k"), 10, []byte{byte('0' + round)}))
		storetest.Must(t, b.Commit(nil))
		got, err := storetest.ReadWindows(w.FetchRange([]byte("k"), 10, 10))
		storetest.Must(t, err)
		if len(got) != round+1 {
			t.Fatalf("round %d: %v", round, got)
		}
		storetest.Must(t, db.Close())
	}
}
