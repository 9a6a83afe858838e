package state

import (
	"errors"
	"time"
)

// Store is what every state store has, whatever it holds.
//
// A store belongs to one task and is used by one goroutine at a time, the
// goroutine running that task; stores are not safe for concurrent use unless
// their documentation says so.
type Store interface {
	// Name is the store's name in the topology. Its changelog topic is
	// "<application id>-<name>-changelog".
	Name() string

	// Flush pushes writes the store buffers (a record cache) down to the
	// layer below it and to the changelog. It does not make anything durable:
	// the runtime calls Flush before it commits a transaction, and a Pebble
	// store's writes become durable when the task's pebblestore.Batch commits
	// (together with the changelog positions they cover).
	Flush() error

	// Close releases the store. Later calls fail with ErrClosed. Closing a
	// Pebble store neither commits nor discards its uncommitted writes: that
	// is up to the owner of its batch.
	Close() error
}

// Iterator walks key-value pairs in the order its producer documents
// (for key-value stores: ascending or descending byte order of keys).
//
//	it := s.Range(from, to)
//	defer it.Close()
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Err(); err != nil { ... }
//
// Key and Value are valid until the next call to Next or Close; copy them to
// keep them. An iterator sees the store as it was when the iterator was
// made: writes made while it is open do not show up in it, and do not
// disturb it.
type Iterator interface {
	// Next moves to the next pair and reports whether there is one. The
	// iterator starts before the first pair.
	Next() bool
	// Key is the current pair's key.
	Key() []byte
	// Value is the current pair's value, never nil.
	Value() []byte
	// Err is the first error the iteration met; Next returns false after it.
	Err() error
	// Close releases the iterator and returns Err.
	Close() error
}

// KeyValueStore maps byte keys to byte values, ordered by key.
//
// Keys and values are bytes: typed access through serdes lives in the
// topology and stream packages. A nil value means "no value": Put with a nil
// value deletes, and Get returns nil for a missing key. A non-nil empty value
// is a value; Get returns it as a non-nil empty slice. A nil key is the empty
// key. Stores copy the keys and values they are given, and the slices they
// return are the caller's to keep (iterators excepted, see Iterator).
//
// Range bounds are inclusive; a nil bound is unbounded on its side. A range
// whose from is after its to is empty.
type KeyValueStore interface {
	Store

	// Get returns key's value, or nil if the key has none.
	Get(key []byte) ([]byte, error)
	// Put sets key to value; a nil value deletes key (Kafka's put(k, null)).
	Put(key, value []byte) error
	// PutIfAbsent sets key to value if key has no value, and returns the value
	// key had (nil if it had none, in which case value was written).
	PutIfAbsent(key, value []byte) ([]byte, error)
	// Delete removes key and returns the value it had, or nil.
	Delete(key []byte) ([]byte, error)

	// Range iterates over the keys in [from, to] in ascending order.
	Range(from, to []byte) Iterator
	// ReverseRange iterates over the keys in [from, to] in descending order.
	ReverseRange(from, to []byte) Iterator
	// All iterates over every key in ascending order.
	All() Iterator
	// ReverseAll iterates over every key in descending order.
	ReverseAll() Iterator
	// PrefixScan iterates in ascending order over the keys that begin with
	// prefix. An empty prefix matches every key.
	PrefixScan(prefix []byte) Iterator

	// ApproximateNumEntries estimates how many keys the store holds. The
	// in-memory and Pebble stores answer exactly; the Pebble store does so by
	// counting, in time linear in the store's size.
	ApproximateNumEntries() (int64, error)
}

// WindowIterator walks the windows of a window store. Key is the record key
// and Start the window's start time; Value is never nil.
type WindowIterator interface {
	Iterator
	// Start is the current window's start, in milliseconds.
	Start() int64
}

// WindowStore maps (key, window start) to a value: the state of windowed
// aggregations and the buffers of stream-stream joins. Times are
// milliseconds since the Unix epoch, like Kafka record timestamps. The store
// does not know window sizes; only starts.
//
// Retention. The store tracks its observed stream time, the largest window
// start ever put (restored writes count). Windows are kept in time segments
// of WindowOptions.SegmentInterval by window start; a segment expires, and
// all of its windows with it, once it lies wholly before
// observed stream time − retention (precisely: its id is below
// SegmentID(observed − retention, interval)). Expired windows are never
// returned, and puts into an expired segment are dropped without logging.
//
// Unless its doc says otherwise, a method returns windows ordered by key
// (byte order), then window start, then insertion order of duplicates.
type WindowStore interface {
	Store

	// Put sets the value of key's window starting at start; a nil value
	// deletes it. With WindowOptions.RetainDuplicates every non-nil Put adds
	// a new entry, even for the same key and start, and nil values are
	// ignored (Kafka's retainDuplicates, used by stream-stream joins).
	Put(key []byte, start int64, value []byte) error
	// Fetch returns the value of key's window starting at start, or nil.
	// With duplicates retained, it returns the first one.
	Fetch(key []byte, start int64) ([]byte, error)
	// FetchRange iterates over key's windows whose start lies in
	// [timeFrom, timeTo], in order of start.
	FetchRange(key []byte, timeFrom, timeTo int64) WindowIterator
	// FetchKeyRange iterates over the windows of keys in [keyFrom, keyTo]
	// (nil bounds are unbounded) whose start lies in [timeFrom, timeTo].
	FetchKeyRange(keyFrom, keyTo []byte, timeFrom, timeTo int64) WindowIterator
	// FetchAll iterates over all windows whose start lies in
	// [timeFrom, timeTo].
	FetchAll(timeFrom, timeTo int64) WindowIterator
	// All iterates over every unexpired window.
	All() WindowIterator
}

// WindowAppendFetcher is a WindowStore that can fetch a window's value
// into the caller's buffer: an aggregation reading a window per record
// and window start then allocates nothing for a value it decodes at once
// (Fetch returns a copy the caller owns).
type WindowAppendFetcher interface {
	// AppendFetch appends the value of key's window starting at start to
	// dst and returns the result; ok is false, and dst returned as it
	// was, when there is no such window. With duplicates retained it
	// fetches the first one, as Fetch does.
	AppendFetch(dst, key []byte, start int64) (out []byte, ok bool, err error)
}

// ObservedTimer is the optional interface of window and session stores
// that tell their observed stream time, which bounds what they hold: no
// window starts after it (no session ends after it). The record cache asks
// a window store for it when it opens, so that its reads of later windows
// it does not hold need not reach the store.
type ObservedTimer interface {
	// ObservedTime is the largest window start (session end) put or
	// restored, or NoObservedTime before the first.
	ObservedTime() int64
}

// SessionIterator walks the sessions of a session store. Key is the record
// key; Value is never nil.
type SessionIterator interface {
	Iterator
	// Start is the current session's start (its first record's time), in ms.
	Start() int64
	// End is the current session's end (its last record's time), in ms.
	End() int64
}

// SessionStore maps (key, session start, session end) to a value: the
// state of session-windowed aggregations. A session [start, end] is the
// span of its records' timestamps, in milliseconds; end >= start.
//
// Retention works as in WindowStore, by session end: observed stream time
// is the largest session end put, and sessions are kept in segments of
// SessionOptions.SegmentInterval by end time.
//
// Unless a method's doc says otherwise, sessions come ordered by key (byte
// order), then end, then start.
type SessionStore interface {
	Store

	// Put sets the value of key's session [start, end]; nil removes it.
	Put(key []byte, start, end int64, value []byte) error
	// Remove removes key's session [start, end].
	Remove(key []byte, start, end int64) error
	// FetchSession returns the value of key's session [start, end], or nil.
	FetchSession(key []byte, start, end int64) ([]byte, error)
	// FindSessions iterates over key's sessions that end at or after
	// earliestSessionEnd and start at or before latestSessionStart: the
	// sessions a record at time t overlaps or may merge with, for
	// earliestSessionEnd = t − gap and latestSessionStart = t + gap.
	FindSessions(key []byte, earliestSessionEnd, latestSessionStart int64) SessionIterator
	// FindSessionsRange is FindSessions for every key in [keyFrom, keyTo]
	// (nil bounds are unbounded).
	FindSessionsRange(keyFrom, keyTo []byte, earliestSessionEnd, latestSessionStart int64) SessionIterator
	// Fetch iterates over all of key's sessions.
	Fetch(key []byte) SessionIterator
	// FetchRange iterates over all sessions of keys in [keyFrom, keyTo].
	FetchRange(keyFrom, keyTo []byte) SessionIterator
}

// Discarder is the optional interface of stores that buffer writes (the
// record caches of package state/cache). Discard closes the store like
// Close but drops the buffered writes instead of flushing them: the
// runtime's path when an exactly-once transaction aborts and the task's
// state is to be rebuilt from its committed changelog.
type Discarder interface {
	Discard() error
}

// ChangeLogger receives every write of a store, to send it to the store's
// changelog topic. It is the runtime's: the store only calls it.
type ChangeLogger interface {
	// LogChange records that key now has value; a nil value is a tombstone.
	// key is in the changelog layout of the store's kind (see
	// WindowChangelogKey and SessionChangelogKey; for key-value stores the
	// key itself), and timestamp is the time to give the changelog record:
	// the timestamp of the record whose processing made the write. The
	// slices are only valid during the call.
	LogChange(key, value []byte, timestamp int64)
}

// RecordTime returns the timestamp of the record the owning task is
// processing. Stores stamp changelog records and cache entries with it.
type RecordTime func() int64

// Logged is the optional interface of stores that changelog their writes and
// can be restored from their changelog. Every store in this module's
// implementations has it.
type Logged interface {
	// SetChangeLogger makes every later write call l.LogChange with the
	// timestamp now returns. A nil l turns logging off. The runtime calls it
	// once, before the task processes records.
	SetChangeLogger(l ChangeLogger, now RecordTime)
	// Restore applies one changelog record (key in the changelog layout,
	// nil value = tombstone) without logging it. Restoring window and
	// session records advances observed stream time, so restoration ends
	// with the same expiry as the writes it replays.
	Restore(key, value []byte) error
}

// WindowOptions configures a window store.
type WindowOptions struct {
	// Retention is how long windows are kept behind observed stream time,
	// at least; windows go in whole segments. Kafka Streams: the store's
	// retention period (window size + grace by default in the DSL).
	// Default 24h.
	Retention time.Duration
	// SegmentInterval is the span of window starts in one segment. Default,
	// as Kafka Streams: max(Retention/2, 1 minute). Tests set it small.
	SegmentInterval time.Duration
	// RetainDuplicates keeps every Put as its own entry instead of
	// replacing the value of the same (key, start); stream-stream joins
	// need it. Kafka Streams' retainDuplicates.
	RetainDuplicates bool
}

// SessionOptions configures a session store.
type SessionOptions struct {
	// Retention is how long sessions are kept behind observed stream time,
	// by session end. Default 24h.
	Retention time.Duration
	// SegmentInterval is the span of session ends in one segment. Default
	// max(Retention/2, 1 minute).
	SegmentInterval time.Duration
}

// Errors returned by stores.
var (
	// ErrClosed is returned by a store used after Close.
	ErrClosed = errors.New("state: store closed")
	// ErrCorruptChangelogKey is returned by Restore and the changelog key
	// parsers for a key too short for its layout.
	ErrCorruptChangelogKey = errors.New("state: corrupt changelog key")
)
