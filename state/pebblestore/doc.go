// Package pebblestore holds state stores in Pebble: one database per
// application instance (DB), shared by every store of every task on it.
// Each task writes through its own Batch, an indexed Pebble batch that its
// stores read through (so they see their own uncommitted writes) and that
// the runtime commits together with the changelog positions the writes
// cover, in one atomic Pebble write. After a crash a task's stores are
// exactly at the committed positions, and the runtime restores only the
// changelog tail above them.
//
// # Bulk restore
//
// A restoration writes through a bulk batch (DB.NewBulkBatch) instead,
// past Pebble's write-ahead log and memtable:
//
//	Restore -> chunk in memory (16 MiB) --full--> sorted run file (unsynced)
//	Commit  -> merge runs + chunk, latest write of each key, minus what a
//	           later range deletion covers -> sstables cut at 64 MiB
//	           (synced) -> one DB.Ingest -> positions and meta in a batch
//
// A changelog is not sorted by key, so the records are sorted in chunks
// and the runs merged: the sstables of one commit do not overlap, and the
// first commit of a fresh store lands in the bottom level, where no
// compaction rewrites it. Range deletions (expired segments) are kept with
// their sequence among the writes, cut into disjoint fragments that go
// into the sstables, and delete what the database held before. The
// positions are committed only after the ingestion, which is durable, so
// a crash at any point leaves the stores at the last commit's positions,
// or with data ahead of them that restoring from them writes again. Run
// files live in the database's bulk-restore directory, which Open
// empties. A commit of less than one chunk is an ordinary batch commit.
//
// # Key layout
//
// Variable-length components are escaped: every 0x00 byte becomes
// 0x00 0xff and the component ends with 0x00 0x01. Escaped strings sort
// like the originals, are never prefixes of one another, and can be
// followed by more components. Times and segment ids are 8 bytes,
// big-endian with the sign bit flipped, so they sort numerically. esc(x)
// below is x escaped.
//
//	task       = 0x01 | esc(task id)
//	store      = task | 0x01 | esc(store name) | kind ('k', 'w' or 's')
//	key-value  = store | key                                   (key as is: it is last)
//	window     = store | segment(start) | esc(key) | start | seq (4 bytes)
//	session    = store | segment(end) | esc(key) | end | start
//	store meta = task | 0x02 | esc(store name) | kind  -> observed time (8) | seq (4)
//	position   = task | 0x03 | changelog topic-partition -> offset (8, big-endian)
//
// So every store is a prefix, a task's whole state (data, meta, positions)
// is one prefix that DropTask deletes with one range deletion, a key range
// of a key-value store is one bounded iteration, and a window or session
// store's time segment is a prefix: expiring segments is one range
// deletion of everything before the oldest live segment. Within a segment,
// windows sort by key then start, sessions by key then end then start;
// queries open one bounded iterator per live segment that holds data
// (segments are found by seeking) and merge them, so results come in key
// order, then time, as state.WindowStore and state.SessionStore promise.
//
// Observed stream time and the duplicate sequence number of window and
// session stores are kept in memory and written to the store's meta key on
// Commit; Rollback reloads them.
//
// # Concurrency
//
// A DB is safe for concurrent use. A Batch and the stores it supplies
// belong to the one goroutine running their task.
package pebblestore
