package pebblestore_test

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/state/storetest"
)

// restoreRecord is one changelog record of the kv or the window store.
type restoreRecord struct {
	window     bool
	key, value []byte
}

// TestWriteBatchRestoresAsIndexed: restoring the same changelogs (puts,
// overwrites, tombstones, windows that expire segments) through a
// write-only batch, committed in pieces, gives the same stores as through
// an indexed batch committed once.
func TestWriteBatchRestoresAsIndexed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	var recs []restoreRecord
	for i := range 5000 {
		key := fmt.Appendf(nil, "k%03d", rng.IntN(300))
		var value []byte
		if rng.IntN(6) > 0 {
			value = fmt.Appendf(nil, "v%d", i)
		}
		if i%3 == 0 {
			// Window starts move forward with jitter: older segments expire.
			start := int64(i/10) + rng.Int64N(40)
			recs = append(recs, restoreRecord{window: true, key: state.WindowChangelogKey(key, start, 0), value: value})
			continue
		}
		recs = append(recs, restoreRecord{key: key, value: value})
	}
	restore := func(b *pebblestore.Batch, commitEvery int) {
		t.Helper()
		kv := b.OpenKeyValueStore("kv")
		w, err := b.OpenWindowStore("win", segOpts)
		storetest.Must(t, err)
		for i, r := range recs {
			var s state.Logged = kv
			if r.window {
				s = w
			}
			storetest.Must(t, s.Restore(r.key, r.value))
			if commitEvery > 0 && (i+1)%commitEvery == 0 {
				storetest.Must(t, b.Commit(map[string]int64{"kv-0": int64(i + 1)}))
			}
		}
		storetest.Must(t, b.Commit(map[string]int64{"kv-0": int64(len(recs))}))
	}
	indexed, writeOnly := openDB(t, vfs.NewMem()), openDB(t, vfs.NewMem())
	restore(indexed.NewBatch("1_0"), 0)
	wb := writeOnly.NewWriteBatch("1_0", 0)
	wb.Reserve(1 << 10)
	restore(wb, 700)

	want, got := contents(t, indexed), contents(t, writeOnly)
	if len(want) == 0 {
		t.Fatal("nothing restored")
	}
	if !maps.Equal(got, want) {
		t.Fatalf("write-only restore holds %d entries, indexed %d; they differ", len(got), len(want))
	}
	if off, ok, err := writeOnly.Position("1_0", "kv-0"); err != nil || !ok || off != int64(len(recs)) {
		t.Fatalf("Position = %d, %t, %v", off, ok, err)
	}
}

// contents reads task 1_0's kv and window stores.
func contents(t *testing.T, db *pebblestore.DB) map[string]string {
	t.Helper()
	b := db.NewBatch("1_0")
	out := map[string]string{}
	it := b.OpenKeyValueStore("kv").All()
	for it.Next() {
		out["kv/"+string(it.Key())] = string(it.Value())
	}
	storetest.Must(t, it.Close())
	w, err := b.OpenWindowStore("win", segOpts)
	storetest.Must(t, err)
	wit := w.All()
	for wit.Next() {
		out[fmt.Sprintf("win/%s@%d", wit.Key(), wit.Start())] = string(wit.Value())
	}
	storetest.Must(t, wit.Close())
	return out
}

// TestWriteBatchReads: a write-only batch's stores read what is
// committed, not their own writes, and refuse iterators.
func TestWriteBatchReads(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	b := db.NewWriteBatch("1_0", 0)
	kv := b.OpenKeyValueStore("kv")
	storetest.Must(t, kv.Put([]byte("a"), []byte("1")))
	if v, err := kv.Get([]byte("a")); err != nil || v != nil {
		t.Fatalf("Get before commit = %q, %v; want nothing (not indexed)", v, err)
	}
	storetest.Must(t, b.Commit(nil))
	if v, err := kv.Get([]byte("a")); err != nil || string(v) != "1" {
		t.Fatalf("Get after commit = %q, %v; want 1", v, err)
	}
	it := kv.All()
	if it.Next() {
		t.Fatal("an iterator over a write-only batch moved")
	}
	if err := it.Close(); !errors.Is(err, pebblestore.ErrWriteOnly) {
		t.Fatalf("iterator error %v, want ErrWriteOnly", err)
	}
}
