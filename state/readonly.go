package state

// The read-only views of the stores: what interactive queries may do with
// another goroutine's stores (Kafka Streams' ReadOnlyKeyValueStore,
// ReadOnlyWindowStore and ReadOnlySessionStore). Each store interface holds
// its read-only view's methods, so every store is also its view.

// ReadOnlyKeyValueStore is the reading half of KeyValueStore.
type ReadOnlyKeyValueStore interface {
	Get(key []byte) ([]byte, error)
	Range(from, to []byte) Iterator
	ReverseRange(from, to []byte) Iterator
	All() Iterator
	ReverseAll() Iterator
	PrefixScan(prefix []byte) Iterator
	ApproximateNumEntries() (int64, error)
}

// ReadOnlyWindowStore is the reading half of WindowStore.
type ReadOnlyWindowStore interface {
	Fetch(key []byte, start int64) ([]byte, error)
	FetchRange(key []byte, timeFrom, timeTo int64) WindowIterator
	FetchKeyRange(keyFrom, keyTo []byte, timeFrom, timeTo int64) WindowIterator
	FetchAll(timeFrom, timeTo int64) WindowIterator
	All() WindowIterator
}

// ReadOnlySessionStore is the reading half of SessionStore.
type ReadOnlySessionStore interface {
	FetchSession(key []byte, start, end int64) ([]byte, error)
	FindSessions(key []byte, earliestSessionEnd, latestSessionStart int64) SessionIterator
	FindSessionsRange(keyFrom, keyTo []byte, earliestSessionEnd, latestSessionStart int64) SessionIterator
	Fetch(key []byte) SessionIterator
	FetchRange(keyFrom, keyTo []byte) SessionIterator
}

var (
	_ ReadOnlyKeyValueStore = KeyValueStore(nil)
	_ ReadOnlyWindowStore   = WindowStore(nil)
	_ ReadOnlySessionStore  = SessionStore(nil)
)
