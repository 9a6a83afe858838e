package pebblestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/sstable"
	"github.com/cockroachdb/pebble/vfs"
)

// Options configures Open. The zero value is ready.
type Options struct {
	// FS is the file system the database lives on. Default: the operating
	// system's. Tests pass vfs.NewMem() or a crashable file system.
	FS vfs.FS
	// Sync makes every Batch.Commit wait for its write-ahead log write to
	// reach stable storage. Default false: the changelog is the store's
	// source of truth, and a lost commit leaves the store at an older,
	// still consistent position, whose tail the runtime restores. Without
	// Sync, Pebble buffers the write-ahead log in the process, so even a
	// SIGKILL (not only a machine crash) loses recent commits; the stream
	// runtime sets it so that a restarted instance restores only the tail.
	Sync bool
	// Pebble, if set, is used to open the database; FS overrides its FS.
	// Without it the database gets a block cache of CacheBytes and bloom
	// filters on every level, for the point reads stores do most.
	Pebble *pebble.Options
	// CacheBytes is the size of Pebble's block cache when Pebble is not
	// set. Default 64 MiB.
	CacheBytes int64
	// Logger receives Pebble's own messages at DEBUG (and a fatal one at
	// ERROR), unless Pebble sets a logger of its own. Default: discard;
	// Pebble never writes to the process's standard error.
	Logger *slog.Logger
}

// DB is one Pebble database holding the stores of every task of an
// application instance. It is safe for concurrent use; the Batches it
// hands out are not.
type DB struct {
	db   *pebble.DB
	sync bool
	fs   vfs.FS
	dir  string
	// tableOpts writes the sstables bulk batches ingest as Pebble
	// writes its bottom level.
	tableOpts sstable.WriterOptions
}

// ErrCorrupt reports a stored key or value that does not decode.
var ErrCorrupt = errors.New("pebblestore: corrupt data")

// ErrWriteOnly is returned by an iterator over a store of a batch from
// DB.NewWriteBatch, which only writes.
var ErrWriteOnly = errors.New("pebblestore: iterator on a write-only batch")

// Open opens (creating if needed) the database in dir.
func Open(dir string, opts Options) (*DB, error) {
	var po *pebble.Options
	if opts.Pebble != nil {
		po = opts.Pebble.Clone()
	} else {
		size := opts.CacheBytes
		if size <= 0 {
			size = 64 << 20
		}
		cache := pebble.NewCache(size)
		defer cache.Unref() // the database holds its own reference
		po = &pebble.Options{Cache: cache}
		po.Levels = make([]pebble.LevelOptions, 7)
		for i := range po.Levels {
			po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
			po.Levels[i].FilterType = pebble.TableFilter
		}
	}
	if opts.FS != nil {
		po.FS = opts.FS
	}
	if po.Logger == nil && po.LoggerAndTracer == nil {
		po.Logger = slogLogger{opts.Logger}
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: open %s: %w", dir, err)
	}
	d := &DB{db: db, sync: opts.Sync, fs: po.FS, dir: dir}
	if d.fs == nil {
		d.fs = vfs.Default
	}
	// What a bulk batch had not committed when the process stopped is
	// not in the database: its files are of no use.
	if err := d.fs.RemoveAll(d.fs.PathJoin(dir, bulkDir)); err != nil {
		db.Close()
		return nil, fmt.Errorf("pebblestore: open %s: remove bulk files: %w", dir, err)
	}
	eo := po.Clone()
	ownCache := eo.Cache == nil
	eo.EnsureDefaults()
	d.tableOpts = eo.MakeWriterOptions(len(eo.Levels)-1, db.FormatMajorVersion().MaxTableFormat())
	d.tableOpts.Cache = nil // the tables are not read through it while written
	if ownCache {
		eo.Cache.Unref()
	}
	return d, nil
}

// SyncWAL waits until every commit made so far, with or without Sync,
// has reached stable storage: one fsync for the commits of many batches
// (see Batch.CommitNoSync).
func (d *DB) SyncWAL() error {
	if err := d.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: sync: %w", err)
	}
	return nil
}

// Close closes the database. Uncommitted writes of its batches are lost,
// and every iterator must be closed first.
func (d *DB) Close() error {
	return d.db.Close()
}

// NewBatch returns the write batch of task: the stores it supplies live
// under task's key prefix and write into it, and read their own
// uncommitted writes. task is the runtime's task id ("0_1"). Use one Batch
// per task at a time; it belongs to the goroutine running the task.
func (d *DB) NewBatch(task string) *Batch {
	b := &Batch{db: d, task: task, b: d.db.NewIndexedBatch()}
	b.w = b.b
	return b
}

// NewWriteBatch returns a batch for task that its stores only write to, as
// when they restore a changelog: Pebble appends each write without
// indexing it, which costs a fraction of an indexed write. Its stores'
// reads see only what is committed, not the batch's own writes, and their
// iterators fail with ErrWriteOnly. Each of its pebble batches starts with
// room for size bytes (a caller committing at about that size never grows
// one); see also Batch.Reserve.
func (d *DB) NewWriteBatch(task string, size int) *Batch {
	b := &Batch{db: d, task: task, b: d.db.NewBatchWithSize(size), writeOnly: true, size: size}
	b.w = b.b
	return b
}

// NewBulkBatch returns a write-only batch (see NewWriteBatch) for a large
// restoration of task: its writes bypass Pebble's write-ahead log and
// memtable. They are sorted in memory chunks, spilled to run files in the
// database's directory, and Commit merges them into sstables that it
// ingests, synced, before it commits the positions; a commit with less
// than one chunk of writes is an ordinary batch commit. Len counts every
// write since the last commit, so the caller bounds how much a crash
// loses, and how long a Commit takes, by committing when it passes a
// size.
func (d *DB) NewBulkBatch(task string, opts BulkOptions) *Batch {
	b := &Batch{db: d, task: task, b: d.db.NewBatch(), writeOnly: true}
	b.bulk = &bulkWriter{db: d, task: task, opts: opts.EnsureDefaults()}
	b.w = b.bulk
	return b
}

// Position returns task's committed position in the changelog partition
// topicPartition (the runtime's naming, e.g. "app-store-changelog-3"): the
// offset Batch.Commit stored with the data it covers. ok is false if none
// was committed.
func (d *DB) Position(task, topicPartition string) (offset int64, ok bool, err error) {
	return readPosition(d.db, task, topicPartition)
}

// reader is what positions are read from: the DB or a batch.
type reader interface {
	Get([]byte) ([]byte, io.Closer, error)
}

func readPosition(r reader, task, topicPartition string) (int64, bool, error) {
	v, c, err := r.Get(positionKey(task, topicPartition))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("pebblestore: read position: %w", err)
	}
	defer c.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("%w: position of %d bytes", ErrCorrupt, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// DropTask deletes everything task keeps: its stores' data and its
// changelog positions. The runtime calls it when it wipes a task's state
// (a reset, or state it can no longer trust). No Batch of task may be in
// use.
func (d *DB) DropTask(task string) error {
	p := taskPrefix(task)
	if err := d.db.DeleteRange(p, prefixEnd(p), d.writeOpts()); err != nil {
		return fmt.Errorf("pebblestore: drop task %s: %w", task, err)
	}
	return nil
}

func (d *DB) writeOpts() *pebble.WriteOptions {
	if d.sync {
		return pebble.Sync
	}
	return pebble.NoSync
}
