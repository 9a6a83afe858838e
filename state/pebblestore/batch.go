package pebblestore

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/cockroachdb/pebble"
	"github.com/runnel-dev/runnel/state"
)

// Batch is one task's uncommitted writes, and the state.Supplier of its
// stores. Stores read through it, so they see their own uncommitted writes.
// Commit applies the writes to the database atomically together with the
// changelog positions they cover; Rollback discards them.
//
// A Batch is not safe for concurrent use: it belongs to the goroutine
// running its task, like the task's stores.
type Batch struct {
	db     *DB
	task   string
	b      *pebble.Batch // indexed unless writeOnly
	iters  int           // open iterators on b
	stores []segmented   // stores with meta to write on Commit
	// writeOnly batches (DB.NewWriteBatch) are not indexed: reads see the
	// committed state only, and iterators are refused. size is the
	// capacity each of their pebble batches starts with.
	writeOnly bool
	size      int
	// bulk, for a batch of DB.NewBulkBatch, takes the stores' writes,
	// and b only the positions and store meta of each commit.
	bulk *bulkWriter
	// w is where the stores write: b, or bulk.
	w writer
}

// writer is what stores write to: a pebble batch or a bulk writer.
type writer interface {
	Set(key, value []byte, _ *pebble.WriteOptions) error
	Delete(key []byte, _ *pebble.WriteOptions) error
	DeleteRange(start, end []byte, _ *pebble.WriteOptions) error
}

// segmented is a store that keeps meta (observed time, seq) in memory and
// writes it on Commit.
type segmented interface {
	writeMeta(*pebble.Batch) error
	loadMeta() error
}

var _ state.Supplier = (*Batch)(nil)

// Task is the task id whose keys the batch writes.
func (b *Batch) Task() string { return b.task }

// Len is the size of the uncommitted writes in bytes.
func (b *Batch) Len() int {
	if b.bulk != nil {
		return b.bulk.bytes
	}
	return b.b.Len()
}

// Commit writes the batch's stores' writes and positions (changelog
// topic-partition to offset, typically the offset after the last changelog
// record the writes produced or restored) in one atomic Pebble write, then
// starts a new, empty batch. Open iterators keep reading what they saw.
//
// A bulk batch (DB.NewBulkBatch) commits in two steps: its writes first,
// ingested durably, then the positions and store meta. A crash between
// the two leaves data ahead of the positions, which restoring from the
// positions writes again, to the same result.
func (b *Batch) Commit(positions map[string]int64) error {
	return b.commit(positions, b.db.writeOpts())
}

// CommitNoSync is Commit without waiting for the write-ahead log to reach
// stable storage, whatever Options.Sync says: a caller committing many
// batches calls DB.SyncWAL once after them.
func (b *Batch) CommitNoSync(positions map[string]int64) error {
	return b.commit(positions, pebble.NoSync)
}

func (b *Batch) commit(positions map[string]int64, opts *pebble.WriteOptions) error {
	if b.bulk != nil {
		// First the data, durable when it is ingested; then the
		// positions, which must not get ahead of it.
		if err := b.bulk.flush(b.b); err != nil {
			b.renew()
			return err
		}
	}
	for _, tp := range slices.Sorted(maps.Keys(positions)) {
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(positions[tp]))
		if err := b.b.Set(positionKey(b.task, tp), v[:], nil); err != nil {
			return fmt.Errorf("pebblestore: commit: %w", err)
		}
	}
	for _, s := range b.stores {
		if err := s.writeMeta(b.b); err != nil {
			return err
		}
	}
	if err := b.b.Commit(opts); err != nil {
		return fmt.Errorf("pebblestore: commit: %w", err)
	}
	b.renew()
	return nil
}

// Reserve makes the batch, when it is write-only and holds no writes, start
// with room for size bytes, and start so again after each commit.
func (b *Batch) Reserve(size int) {
	if !b.writeOnly || b.bulk != nil || b.b.Count() > 0 {
		return
	}
	b.size = size
	b.renew()
}

// Rollback discards the uncommitted writes: the stores are back at the last
// commit, as after a crash.
func (b *Batch) Rollback() error {
	if b.bulk != nil {
		if err := b.bulk.reset(); err != nil {
			return err
		}
	}
	b.renew()
	for _, s := range b.stores {
		if err := s.loadMeta(); err != nil {
			return err
		}
	}
	return nil
}

// renew replaces b.b with an empty batch. The old one is closed, which lets
// Pebble reuse it, only if no iterator still reads it.
func (b *Batch) renew() {
	if b.iters == 0 {
		b.b.Close()
	}
	b.iters = 0
	switch {
	case b.bulk != nil:
		b.b = b.db.db.NewBatch()
		return
	case b.writeOnly:
		b.b = b.db.db.NewBatchWithSize(b.size)
	default:
		b.b = b.db.db.NewIndexedBatch()
	}
	b.w = b.b
}

// Position returns the task's committed position in the changelog
// partition topicPartition; see DB.Position.
func (b *Batch) Position(topicPartition string) (offset int64, ok bool, err error) {
	return readPosition(b.db.db, b.task, topicPartition)
}

// newIter opens an iterator over b's current batch and the committed data
// under it, with bounds [lower, upper); nil upper is unbounded.
func (b *Batch) newIter(lower, upper []byte) (*pebble.Iterator, func(), error) {
	if b.writeOnly {
		return nil, nil, ErrWriteOnly
	}
	it, err := b.b.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, nil, err
	}
	b.iters++
	owner := b.b
	return it, func() {
		if b.b == owner {
			b.iters--
		}
	}, nil
}

// get reads key through the batch; nil if absent. The result is a copy,
// non-nil for an empty value.
func (b *Batch) get(key []byte) ([]byte, error) {
	var r pebble.Reader = b.b
	if b.writeOnly {
		r = b.db.db // what is committed; see NewWriteBatch
	}
	v, c, err := r.Get(key)
	if err == pebble.ErrNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pebblestore: get: %w", err)
	}
	out := append(make([]byte, 0, len(v)), v...)
	return out, c.Close()
}

// KeyValueStore implements state.Supplier.
func (b *Batch) KeyValueStore(name string) (state.KeyValueStore, error) {
	return b.OpenKeyValueStore(name), nil
}

// WindowStore implements state.Supplier.
func (b *Batch) WindowStore(name string, opts state.WindowOptions) (state.WindowStore, error) {
	return b.OpenWindowStore(name, opts)
}

// SessionStore implements state.Supplier.
func (b *Batch) SessionStore(name string, opts state.SessionOptions) (state.SessionStore, error) {
	return b.OpenSessionStore(name, opts)
}
