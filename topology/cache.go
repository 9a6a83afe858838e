package topology

import (
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/cache"
)

// FlushListener receives the updates a caching store deduplicated, once per
// key per flush: the key's value now, the value it had in the store before
// (nil when absent), and the timestamp of the record that made the last
// update. Keys of window stores are in the changelog layout (see
// state.WindowChangelogKey). The slices are only valid during the call.
type FlushListener = cache.FlushListener

// CachingStore is the optional interface of a store with a record cache in
// front (package state/cache): the DSL's processors register a listener and
// forward the updates it receives instead of forwarding each write, so that
// downstream sees one update per key per commit (Kafka Streams'
// cache.max.bytes.buffering).
type CachingStore interface {
	SetFlushListener(l FlushListener)
}

var (
	_ CachingStore    = (*cache.KeyValueStore)(nil)
	_ CachingStore    = (*cache.WindowStore)(nil)
	_ state.Discarder = (*cache.KeyValueStore)(nil)
	_ state.Discarder = (*cache.WindowStore)(nil)
)

// withCache puts a cache in front of s if its kind has one. Session stores
// have none: their writes go through at once.
func withCache(c *cache.Cache, s state.Store, spec StoreSpec, now state.RecordTime) state.Store {
	switch s := s.(type) {
	case state.KeyValueStore:
		return cache.NewKeyValueStore(c, s, nil, now)
	case state.WindowStore:
		if spec.Window.RetainDuplicates {
			return s
		}
		return cache.NewWindowStore(c, s, spec.Window.EnsureDefaults(), nil, now)
	}
	return s
}
