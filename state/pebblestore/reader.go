package pebblestore

import (
	"github.com/runnel-dev/runnel/state"
)

// Reader reads one task's stores as last committed, from any goroutine:
// the view interactive queries use while the task's own goroutine writes
// through its Batch. It sees no uncommitted write; each read (a Get, or an
// iterator when it is opened) sees the data committed at that moment.
//
// A Reader, and the stores it opens, belong to one goroutine. Close it
// after closing every iterator its stores opened, and before the DB.
type Reader struct {
	b *Batch // never committed: it only reads through to the database
}

// Reader returns a reader of task's committed stores.
func (d *DB) Reader(task string) *Reader {
	return &Reader{b: d.NewBatch(task)}
}

// KeyValueStore opens the key-value store name.
func (r *Reader) KeyValueStore(name string) state.ReadOnlyKeyValueStore {
	return r.b.OpenKeyValueStore(name)
}

// WindowStore opens the window store name; opts must be the store's, as
// they decide which windows have expired.
func (r *Reader) WindowStore(name string, opts state.WindowOptions) (state.ReadOnlyWindowStore, error) {
	return r.b.OpenWindowStore(name, opts)
}

// SessionStore opens the session store name; opts must be the store's.
func (r *Reader) SessionStore(name string, opts state.SessionOptions) (state.ReadOnlySessionStore, error) {
	return r.b.OpenSessionStore(name, opts)
}

// Close releases the reader.
func (r *Reader) Close() error {
	return r.b.b.Close()
}
