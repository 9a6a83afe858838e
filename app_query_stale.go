package runnel

import (
	"fmt"
	"maps"
	"slices"

	"github.com/runnel-dev/runnel/state/pebblestore"
)

// Stale stores: a view made with StaleStores reads, besides the local
// active tasks, the local standby tasks and the active tasks still
// restoring (Kafka Streams' StoreQueryParameters.enableStaleStores). Their
// committed state may be behind the active's: a standby commits what it
// applied from the changelog every commit interval, after the active
// committed it; a restoring task has not read its whole changelog yet. In
// exchange such a view answers while the application rebalances or
// restores, and on an instance that is not the key's active one, which
// lets a caller spread reads over the replicas or keep reading while the
// active moves.

// QueryOption changes what a store view reads.
type QueryOption func(*queryOptions)

type queryOptions struct {
	stale bool
}

// StaleStores makes a view also read the local standby tasks' stores and
// those of active tasks still restoring, whose state may be behind the
// active's (see KeyLocation.Standbys for where a key's standbys are). The
// view then fails with ErrStoreUnavailable only while the application is
// not running.
func StaleStores() QueryOption {
	return func(o *queryOptions) { o.stale = true }
}

func applyQueryOptions(opts []QueryOption) queryOptions {
	var o queryOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// standbyAdded records that the standby updater keeps task k here: its
// store holds the state the updater committed.
func (q *queryState) standbyAdded(k taskKey) {
	q.mu.Lock()
	if q.standbys == nil {
		q.standbys = map[taskKey]bool{}
	}
	q.standbys[k] = true
	q.mu.Unlock()
}

// standbyDropped records that the updater no longer keeps task k (it was
// taken over by a worker, moved away, or the updater closed).
func (q *queryState) standbyDropped(k taskKey) {
	q.mu.Lock()
	delete(q.standbys, k)
	q.mu.Unlock()
}

// acquireStale returns the database and the local tasks of sub-topology
// sub, active (ready or restoring) and standby. Unless it fails, the
// caller must call q.readers.Done when it has stopped reading.
func (q *queryState) acquireStale(store string, sub int) (*pebblestore.DB, []taskKey, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.running {
		return nil, nil, fmt.Errorf("%w: store %q: the application is not running", ErrStoreUnavailable, store)
	}
	set := map[taskKey]bool{}
	for k := range q.tasks {
		if k.sub == sub {
			set[k] = true
		}
	}
	for k := range q.standbys {
		if k.sub == sub {
			set[k] = true
		}
	}
	out := slices.SortedFunc(maps.Keys(set), compareTasks)
	q.readers.Add(1)
	return q.db, out, nil
}
