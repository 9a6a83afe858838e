// Package state defines Runnel's state stores: key-value, window and session
// stores over byte keys and values, the hooks that changelog their writes
// and restore them, and the binary layouts of their changelog keys.
//
// Implementations live in sub-packages: memstore (in memory, the simple
// reference), pebblestore (one Pebble database per application instance,
// every store of every task under its own key prefix, writes committed in
// batches together with the changelog positions they cover), and cache (the
// record cache in front of a store, Kafka Streams'
// cache.max.bytes.buffering). storetest holds the test suite every
// implementation passes.
//
// Layering, from the processor down:
//
//	typed store (topology/stream: serdes)
//	  -> cache.KeyValue (optional: dedups updates, forwards on flush/evict)
//	    -> memstore or pebblestore store (calls its ChangeLogger on every write)
//
// Concurrency: a store belongs to one task and is used by the one goroutine
// running it.
package state
