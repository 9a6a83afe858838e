package pebblestore_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/state/storetest"
)

// bulkRecord is one changelog record of task 1_0's key-value, window or
// session store.
type bulkRecord struct {
	store      byte // 'k', 'w' or 's'
	key, value []byte
}

// bulkChangelog makes n changelog records over the three stores: random
// keys written again and again, values of 0 to 400 bytes, one in six a
// tombstone, window starts and session ends moving forward with jitter so
// that older segments expire (range deletions) while the restore runs.
func bulkChangelog(seed uint64, n int) []bulkRecord {
	rng := rand.New(rand.NewPCG(seed, seed))
	var recs []bulkRecord
	for i := range n {
		key := fmt.Appendf(nil, "k%04d", rng.IntN(1500))
		var value []byte
		if rng.IntN(6) > 0 {
			value = fmt.Appendf(nil, "v%d-", i)
			for range rng.IntN(400) {
				value = append(value, byte('a'+rng.IntN(26)))
			}
		}
		switch rng.IntN(4) {
		case 0:
			start := int64(i/20) + rng.Int64N(60)
			recs = append(recs, bulkRecord{store: 'w', key: state.WindowChangelogKey(key, start, 0), value: value})
		case 1:
			end := int64(i/20) + rng.Int64N(60)
			recs = append(recs, bulkRecord{store: 's', key: state.SessionChangelogKey(key, end-rng.Int64N(10), end), value: value})
		default:
			recs = append(recs, bulkRecord{store: 'k', key: key, value: value})
		}
	}
	return recs
}

// restoreBulk applies recs through b, committing every commitEvery
// records (never if 0) and at the end, with the position after the last
// record applied, starting from offset from.
func restoreBulk(t *testing.T, b *pebblestore.Batch, recs []bulkRecord, from, commitEvery int) {
	t.Helper()
	kv := b.OpenKeyValueStore("kv")
	w, err := b.OpenWindowStore("win", segOpts)
	storetest.Must(t, err)
	s, err := b.OpenSessionStore("sess", state.SessionOptions{Retention: segOpts.Retention, SegmentInterval: segOpts.SegmentInterval})
	storetest.Must(t, err)
	stores := map[byte]state.Logged{'k': kv, 'w': w, 's': s}
	for i, r := range recs {
		storetest.Must(t, stores[r.store].Restore(r.key, r.value))
		if commitEvery > 0 && (i+1)%commitEvery == 0 {
			storetest.Must(t, b.Commit(map[string]int64{"c-0": int64(from + i + 1)}))
		}
	}
	storetest.Must(t, b.Commit(map[string]int64{"c-0": int64(from + len(recs))}))
}

// bulkContents reads task 1_0's three stores, and task 1_1's key-value
// store, which no restore touches.
func bulkContents(t *testing.T, db *pebblestore.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, task := range []string{"1_0", "1_1"} {
		b := db.NewBatch(task)
		it := b.OpenKeyValueStore("kv").All()
		for it.Next() {
			out[task+"/kv/"+string(it.Key())] = string(it.Value())
		}
		storetest.Must(t, it.Close())
		w, err := b.OpenWindowStore("win", segOpts)
		storetest.Must(t, err)
		wit := w.All()
		for wit.Next() {
			out[fmt.Sprintf("%s/win/%s@%d", task, wit.Key(), wit.Start())] = string(wit.Value())
		}
		storetest.Must(t, wit.Close())
		s, err := b.OpenSessionStore("sess", state.SessionOptions{Retention: segOpts.Retention, SegmentInterval: segOpts.SegmentInterval})
		storetest.Must(t, err)
		sit := s.FindSessions(nil, 0, 1<<40)
		for sit.Next() {
			out[fmt.Sprintf("%s/sess/%s@%d-%d", task, sit.Key(), sit.Start(), sit.End())] = string(sit.Value())
		}
		storetest.Must(t, sit.Close())
	}
	return out
}

// seedOther commits data of task 1_1 next to the restored task's.
func seedOther(t *testing.T, db *pebblestore.DB) {
	t.Helper()
	b := db.NewBatch("1_1")
	kv := b.OpenKeyValueStore("kv")
	for _, k := range []string{"", "k0001", "\xff"} {
		storetest.Must(t, kv.Put([]byte(k), []byte("other task")))
	}
	storetest.Must(t, b.Commit(nil))
}

// diff describes how got differs from want.
func diff(got, want map[string]string) string {
	var out []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			out = append(out, "missing "+k)
		} else if g != v {
			out = append(out, "differs "+k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, "extra "+k)
		}
	}
	slices.Sort(out)
	return fmt.Sprintf("%d entries vs %d: %v", len(got), len(want), out[:min(len(out), 8)])
}

// TestBulkRestoresAsIndexed: restoring changelogs through a bulk batch
// (sorted chunks spilled to runs, merged into sstables cut small, and
// ingested, or a chunk replayed into a plain batch) gives the same stores
// and position as through an indexed batch committed once: later records
// overwrite earlier ones of the same key, tombstones delete, expired
// segments go. Also on top of state committed before, which the ingested
// tombstones and range deletions must delete.
func TestBulkRestoresAsIndexed(t *testing.T) {
	recs := bulkChangelog(5, 6000)
	for _, tc := range []struct {
		name        string
		opts        pebblestore.BulkOptions
		commitEvery int
		existing    int // records committed before, through an indexed batch
	}{
		{"one chunk, no spill", pebblestore.BulkOptions{}, 0, 0},
		{"spilled, one table", pebblestore.BulkOptions{ChunkBytes: 64 << 10}, 0, 0},
		{"spilled, many tables", pebblestore.BulkOptions{ChunkBytes: 64 << 10, TableBytes: 16 << 10}, 0, 0},
		{"spilled, committed in pieces", pebblestore.BulkOptions{ChunkBytes: 32 << 10, TableBytes: 64 << 10}, 1700, 0},
		{"on top of committed state", pebblestore.BulkOptions{ChunkBytes: 64 << 10, TableBytes: 32 << 10}, 0, 2500},
		{"tiny chunks", pebblestore.BulkOptions{ChunkBytes: 1, TableBytes: 1}, 0, 5000},
		{"each chunk ingested", pebblestore.BulkOptions{ChunkBytes: 64 << 10, TableBytes: 16 << 10, IngestEachChunk: true}, 0, 0},
		{"each chunk ingested, in pieces, on top", pebblestore.BulkOptions{ChunkBytes: 32 << 10, IngestEachChunk: true}, 1100, 1500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			indexed, bulk := openDB(t, vfs.NewMem()), openDB(t, vfs.NewMem())
			seedOther(t, indexed)
			seedOther(t, bulk)
			restoreBulk(t, indexed.NewBatch("1_0"), recs, 0, 0)
			if tc.existing > 0 {
				restoreBulk(t, bulk.NewBatch("1_0"), recs[:tc.existing], 0, 0)
			}
			restoreBulk(t, bulk.NewBulkBatch("1_0", tc.opts), recs[tc.existing:], tc.existing, tc.commitEvery)

			want, got := bulkContents(t, indexed), bulkContents(t, bulk)
			if len(want) < 1000 {
				t.Fatalf("only %d entries restored", len(want))
			}
			if !maps.Equal(got, want) {
				t.Fatalf("bulk restore differs from indexed: %s", diff(got, want))
			}
			// Byte for byte, expired segments included: they are gone
			// from both (the stores' reads would skip them anyway).
			wantRaw, err := pebblestore.RawContents(indexed)
			storetest.Must(t, err)
			gotRaw, err := pebblestore.RawContents(bulk)
			storetest.Must(t, err)
			if !maps.Equal(gotRaw, wantRaw) {
				t.Fatalf("bulk restore's database differs from indexed: %s", diff(gotRaw, wantRaw))
			}
			if off, ok, err := bulk.Position("1_0", "c-0"); err != nil || !ok || off != int64(len(recs)) {
				t.Fatalf("Position = %d, %t, %v; want %d", off, ok, err, len(recs))
			}
		})
	}
}

// TestBulkCrashMidRestore: a machine crash while a bulk batch holds
// spilled, uncommitted writes leaves the stores exactly at the last
// commit, with its position, and no bulk files; restoring again from that
// position gives the stores of the whole changelog.
func TestBulkCrashMidRestore(t *testing.T) {
	recs := bulkChangelog(9, 6000)
	const committed, crashed = 2000, 4500
	want := func(n int) map[string]string {
		db := openDB(t, vfs.NewMem())
		seedOther(t, db)
		restoreBulk(t, db.NewBatch("1_0"), recs[:n], 0, 0)
		return bulkContents(t, db)
	}
	opts := pebblestore.BulkOptions{ChunkBytes: 64 << 10, TableBytes: 32 << 10}

	fs := vfs.NewStrictMem()
	db, err := pebblestore.Open("", pebblestore.Options{FS: fs, Sync: true})
	storetest.Must(t, err)
	seedOther(t, db)
	restoreBulk(t, db.NewBulkBatch("1_0", opts), recs[:committed], 0, 0)
	// More restored, spilled to runs, not committed: the crash comes.
	b := db.NewBulkBatch("1_0", opts)
	kv := b.OpenKeyValueStore("kv")
	w, err := b.OpenWindowStore("win", segOpts)
	storetest.Must(t, err)
	for _, r := range recs[committed:crashed] {
		switch r.store {
		case 'k':
			storetest.Must(t, kv.Restore(r.key, r.value))
		case 'w':
			storetest.Must(t, w.Restore(r.key, r.value))
		}
	}
	if b.Len() < 4*opts.ChunkBytes {
		t.Fatalf("only %d bytes written before the crash: nothing spilled", b.Len())
	}
	if names, err := fs.List("bulk-restore"); err != nil || len(names) == 0 {
		t.Fatalf("no bulk files before the crash: %v, %v", names, err)
	}
	fs.SetIgnoreSyncs(true)
	storetest.Must(t, db.Close())
	fs.ResetToSyncedState()
	fs.SetIgnoreSyncs(false)

	db, err = pebblestore.Open("", pebblestore.Options{FS: fs, Sync: true})
	storetest.Must(t, err)
	t.Cleanup(func() { db.Close() })
	if names, err := fs.List("bulk-restore"); err == nil && len(names) > 0 {
		t.Fatalf("bulk files left after the restart: %v", names)
	}
	off, ok, err := db.Position("1_0", "c-0")
	storetest.Must(t, err)
	if !ok || off != committed {
		t.Fatalf("position after the crash %d (%t), want %d", off, ok, committed)
	}
	if got, want := bulkContents(t, db), want(committed); !maps.Equal(got, want) {
		t.Fatalf("after the crash, stores differ from the committed position's: %s", diff(got, want))
	}
	restoreBulk(t, db.NewBulkBatch("1_0", opts), recs[off:], int(off), 0)
	if got, want := bulkContents(t, db), want(len(recs)); !maps.Equal(got, want) {
		t.Fatalf("restored again after the crash, stores differ from the whole changelog's: %s", diff(got, want))
	}
}

// TestBulkRollback: a rolled back bulk batch leaves nothing behind, and
// the batch takes writes again.
func TestBulkRollback(t *testing.T) {
	fs := vfs.NewMem()
	db := openDB(t, fs)
	b := db.NewBulkBatch("1_0", pebblestore.BulkOptions{ChunkBytes: 1 << 10})
	kv := b.OpenKeyValueStore("kv")
	for i := range 100 {
		storetest.Must(t, kv.Restore(fmt.Appendf(nil, "k%d", i), make([]byte, 100)))
	}
	storetest.Must(t, b.Rollback())
	if b.Len() != 0 {
		t.Fatalf("Len after Rollback = %d", b.Len())
	}
	if names, err := fs.List(fs.PathJoin("db", "bulk-restore")); err == nil && len(names) > 0 {
		t.Fatalf("bulk files left after Rollback: %v", names)
	}
	storetest.Must(t, kv.Restore([]byte("a"), []byte("1")))
	storetest.Must(t, b.Commit(map[string]int64{"c-0": 1}))
	if v, err := db.NewBatch("1_0").OpenKeyValueStore("kv").Get([]byte("a")); err != nil || string(v) != "1" {
		t.Fatalf("Get after commit = %q, %v", v, err)
	}
	if v, err := db.NewBatch("1_0").OpenKeyValueStore("kv").Get([]byte("k1")); err != nil || v != nil {
		t.Fatalf("rolled back key = %q, %v; want nothing", v, err)
	}
}

// TestBulkFilesRemovedOnOpen: the run files of a bulk batch that never
// committed (the process stopped) are removed when the database opens.
func TestBulkFilesRemovedOnOpen(t *testing.T) {
	fs := vfs.NewMem()
	db, err := pebblestore.Open("db", pebblestore.Options{FS: fs})
	storetest.Must(t, err)
	b := db.NewBulkBatch("1_0", pebblestore.BulkOptions{ChunkBytes: 1 << 10})
	kv := b.OpenKeyValueStore("kv")
	for i := range 100 {
		storetest.Must(t, kv.Restore(fmt.Appendf(nil, "k%d", i), make([]byte, 100)))
	}
	if names, err := fs.List(fs.PathJoin("db", "bulk-restore")); err != nil || len(names) == 0 {
		t.Fatalf("no bulk files: %v, %v", names, err)
	}
	storetest.Must(t, db.Close())
	db, err = pebblestore.Open("db", pebblestore.Options{FS: fs})
	storetest.Must(t, err)
	defer db.Close()
	if names, err := fs.List(fs.PathJoin("db", "bulk-restore")); err == nil && len(names) > 0 {
		t.Fatalf("bulk files left after Open: %v", names)
	}
}

// changelogOf records a store's changelog as processing writes it.
type changelogOf struct {
	store byte
	recs  *[]bulkRecord
}

func (c changelogOf) LogChange(key, value []byte, _ int64) {
	*c.recs = append(*c.recs, bulkRecord{store: c.store, key: bytes.Clone(key), value: bytes.Clone(value)})
}

// TestBulkRestoreEqualsProcessed: stores built by processing (puts,
// overwrites, deletes, windows and sessions expiring) and the stores a bulk
// batch restores from the changelog that processing logged hold the same.
func TestBulkRestoreEqualsProcessed(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 21))
	processed := openDB(t, vfs.NewMem())
	seedOther(t, processed)
	var log []bulkRecord
	b := processed.NewBatch("1_0")
	kv := b.OpenKeyValueStore("kv")
	w, err := b.OpenWindowStore("win", segOpts)
	storetest.Must(t, err)
	s, err := b.OpenSessionStore("sess", state.SessionOptions{Retention: segOpts.Retention, SegmentInterval: segOpts.SegmentInterval})
	storetest.Must(t, err)
	now := func() int64 { return 0 }
	kv.SetChangeLogger(changelogOf{'k', &log}, now)
	w.SetChangeLogger(changelogOf{'w', &log}, now)
	s.SetChangeLogger(changelogOf{'s', &log}, now)
	for i := range 8000 {
		key := fmt.Appendf(nil, "k%04d", rng.IntN(1500))
		value := fmt.Appendf(nil, "v%d-%s", i, bytes.Repeat([]byte{'x'}, rng.IntN(300)))
		del := rng.IntN(6) == 0
		switch rng.IntN(4) {
		case 0:
			start := int64(i/25) + rng.Int64N(60)
			if del {
				value = nil
			}
			storetest.Must(t, w.Put(key, start, value))
		case 1:
			end := int64(i/25) + rng.Int64N(60)
			if del {
				storetest.Must(t, s.Remove(key, end-5, end))
			} else {
				storetest.Must(t, s.Put(key, end-5, end, value))
			}
		default:
			if del {
				_, err = kv.Delete(key)
				storetest.Must(t, err)
			} else {
				storetest.Must(t, kv.Put(key, value))
			}
		}
		if i%1000 == 999 {
			storetest.Must(t, b.Commit(nil))
		}
	}
	storetest.Must(t, b.Commit(nil))

	restored := openDB(t, vfs.NewMem())
	seedOther(t, restored)
	restoreBulk(t, restored.NewBulkBatch("1_0", pebblestore.BulkOptions{ChunkBytes: 48 << 10, TableBytes: 64 << 10}), log, 0, 3000)
	want, got := bulkContents(t, processed), bulkContents(t, restored)
	if len(want) < 1000 {
		t.Fatalf("only %d entries processed", len(want))
	}
	if !maps.Equal(got, want) {
		t.Fatalf("restored stores differ from processed: %s", diff(got, want))
	}
}

// runFailFS fails the creation of bulk run files while fail is set.
type runFailFS struct {
	vfs.FS
	fail bool
}

func (fs *runFailFS) Create(name string) (vfs.File, error) {
	if fs.fail && strings.HasSuffix(name, ".run") {
		return nil, errors.New("injected: no space left for runs")
	}
	return fs.FS.Create(name)
}

// TestBulkSpillFailure: a run file that cannot be written fails the
// batch, by the commit at the latest (spills run on a goroutine of their
// own, so the write that filled the chunk may not see it), and nothing of
// the batch is committed, least of all its position; the batch is then
// empty and commits again once the disk takes its runs.
func TestBulkSpillFailure(t *testing.T) {
	fs := &runFailFS{FS: vfs.NewMem()}
	db := openDB(t, fs)
	b := db.NewBulkBatch("1_0", pebblestore.BulkOptions{ChunkBytes: 1 << 10})
	kv := b.OpenKeyValueStore("kv")
	fs.fail = true
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = kv.Restore(fmt.Appendf(nil, "k%d", i), make([]byte, 100))
	}
	if err == nil {
		err = b.Commit(map[string]int64{"c-0": 100})
	}
	if err == nil {
		t.Fatal("writes and commit succeeded with no run file written")
	}
	if _, ok, err := db.Position("1_0", "c-0"); ok || err != nil {
		t.Fatalf("position committed after a failed spill (err %v)", err)
	}
	if v, err := db.NewBatch("1_0").OpenKeyValueStore("kv").Get([]byte("k1")); err != nil || v != nil {
		t.Fatalf("k1 = %q, %v after a failed spill; want nothing", v, err)
	}
	storetest.Must(t, b.Rollback())
	fs.fail = false
	for i := range 100 {
		storetest.Must(t, kv.Restore(fmt.Appendf(nil, "k%d", i), []byte("v")))
	}
	storetest.Must(t, b.Commit(map[string]int64{"c-0": 100}))
	if v, err := db.NewBatch("1_0").OpenKeyValueStore("kv").Get([]byte("k99")); err != nil || string(v) != "v" {
		t.Fatalf("k99 = %q, %v after the second commit", v, err)
	}
}
