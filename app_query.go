package runnel

import (
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"

	"github.com/runnel-dev/runnel/internal/tsvalue"
	"github.com/runnel-dev/runnel/stream"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kadm"
)

// Interactive queries read the stores of the tasks an instance runs as
// active, from any goroutine, while the runner processes on its own (Kafka
// Streams' KafkaStreams.store). They read Pebble's committed data, never a
// task's uncommitted batch: what a query returns is what the last commit
// made durable, at most one commit interval behind processing.
//
// The runner tells queryState what it does through a few calls: attach and
// detach around its life, rebalance when the group takes partitions
// away or hands new ones, restoring and ready around each task's
// restoration, closed when it closes a task, and settled once it has acted
// on a new assignment.

// ErrStoreUnavailable is returned by interactive queries that cannot be
// answered now: the application is not running, is rebalancing, or is
// restoring a task of the store. Retry later, possibly on the instance
// KeyInstance names. It is Kafka Streams' InvalidStateStoreException.
var ErrStoreUnavailable = errors.New("stream: state store unavailable, retry")

// ErrUnknownStore is returned for a store name the topology does not have,
// or that names a store of another kind.
var ErrUnknownStore = errors.New("stream: unknown state store")

// queryState is what interactive queries know of the runner.
type queryState struct {
	// readers counts the queries reading db; detach waits for them, so the
	// database is never closed under a query. A query that starts once
	// detach has begun fails instead (even one nested in another's loop,
	// which waiting would deadlock).
	readers sync.WaitGroup

	mu          sync.Mutex // guards the following
	db          *pebblestore.DB
	adm         *kadm.Client
	process     string
	running     bool
	rebalancing map[int]bool     // workers acting on a new assignment
	tasks       map[taskKey]bool // local active tasks; false while restoring
	// standbys are the standby tasks the standby updater keeps, for
	// StaleStores views. The updater adds and drops them over its own
	// life (it drops them all as it closes), so attach and detach leave
	// them alone.
	standbys map[taskKey]bool
	// onRestore, when set (by tests), is called as a task starts restoring.
	onRestore func(taskKey)
}

// attach makes the runner's database and admin client queryable.
func (q *queryState) attach(db *pebblestore.DB, adm *kadm.Client, process string) {
	q.mu.Lock()
	q.db, q.adm, q.process, q.running, q.rebalancing = db, adm, process, true, map[int]bool{}
	q.tasks = map[taskKey]bool{}
	q.mu.Unlock()
}

// detach waits for the queries reading the database and stops new ones.
func (q *queryState) detach() {
	q.mu.Lock()
	q.db, q.adm, q.running, q.tasks = nil, nil, false, nil
	q.mu.Unlock()
	q.readers.Wait()
}

// rebalance marks the assignment as changing: queries fail until the
// runner has acted on it (settled).
func (q *queryState) rebalance(worker int) {
	q.mu.Lock()
	if q.rebalancing != nil {
		q.rebalancing[worker] = true
	}
	q.mu.Unlock()
}

// settled marks the runner's tasks as those of the current assignment.
func (q *queryState) settled(worker int) {
	q.mu.Lock()
	delete(q.rebalancing, worker)
	q.mu.Unlock()
}

func (q *queryState) restoring(k taskKey) {
	q.mu.Lock()
	if q.tasks != nil {
		q.tasks[k] = false
	}
	hook := q.onRestore
	q.mu.Unlock()
	if hook != nil {
		hook(k)
	}
}

func (q *queryState) ready(k taskKey) {
	q.mu.Lock()
	if q.tasks != nil {
		q.tasks[k] = true
	}
	q.mu.Unlock()
}

func (q *queryState) closed(k taskKey) {
	q.mu.Lock()
	delete(q.tasks, k)
	q.mu.Unlock()
}

// acquire returns the database and the local active tasks of
// sub-topology sub, or why they cannot be queried now. Unless it fails,
// the caller must call q.readers.Done when it has stopped reading.
func (q *queryState) acquire(store string, sub int) (*pebblestore.DB, []taskKey, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.running {
		return nil, nil, fmt.Errorf("%w: store %q: the application is not running", ErrStoreUnavailable, store)
	}
	var out []taskKey
	for k, ready := range q.tasks {
		if k.sub != sub {
			continue
		}
		if !ready {
			return nil, nil, fmt.Errorf("%w: store %q: task %s is restoring", ErrStoreUnavailable, store, k)
		}
		out = append(out, k)
	}
	if len(q.rebalancing) > 0 {
		return nil, nil, fmt.Errorf("%w: store %q: the application is rebalancing", ErrStoreUnavailable, store)
	}
	sortTasks(out)
	q.readers.Add(1)
	return q.db, out, nil
}

// storeQuery finds a store for a query: its spec and sub-topology.
type storeQuery struct {
	app   *App
	spec  topology.StoreSpec
	sub   int
	stale bool // read standby and restoring tasks too (StaleStores)
}

// anyKind makes newStoreQuery accept a store of any kind.
const anyKind topology.StoreKind = -1

func newStoreQuery(a *App, name string, kind topology.StoreKind) (storeQuery, error) {
	spec, ok := a.topo.Store(name)
	if !ok || a.topo.IsGlobalStore(name) {
		return storeQuery{}, fmt.Errorf("%w: %q", ErrUnknownStore, name)
	}
	if kind != anyKind && spec.Kind != kind {
		return storeQuery{}, fmt.Errorf("%w: %q is a %s, not a %s", ErrUnknownStore, name, spec.Kind, kind)
	}
	for _, s := range a.topo.SubTopologies() {
		if slices.Contains(s.Stores(), name) {
			return storeQuery{app: a, spec: spec, sub: s.ID()}, nil
		}
	}
	return storeQuery{}, fmt.Errorf("%w: %q is connected to no processor", ErrUnknownStore, name)
}

// read calls fn with a reader of each local active task of the store
// (and each standby and restoring one, for a stale view), holding the
// database open meanwhile; it stops when fn returns false or an error.
func (s storeQuery) read(fn func(*pebblestore.Reader) (bool, error)) error {
	q := &s.app.queries
	acquire := q.acquire
	if s.stale {
		acquire = q.acquireStale
	}
	db, tasks, err := acquire(s.spec.Name, s.sub)
	if err != nil {
		return err
	}
	defer q.readers.Done()
	for _, k := range tasks {
		r := db.Reader(k.String())
		more, err := fn(r)
		err = errors.Join(err, r.Close())
		if err != nil {
			return fmt.Errorf("stream: query store %q of task %s: %w", s.spec.Name, k, err)
		}
		if !more {
			return nil
		}
	}
	return nil
}

// KeyValueStoreView is a read-only, typed view of a key-value store of the
// tasks an App runs as active: a table's store (Materialized name),
// Count's, Aggregate's or Reduce's (Kafka Streams'
// ReadOnlyKeyValueStore). Every call reads the committed state of the
// local tasks; keys held by other instances are not there (see
// KeyInstance), unless a StaleStores view finds them in a local standby.
// It is safe for concurrent use.
type KeyValueStoreView[K, V any] struct {
	q  storeQuery
	ks serde.Serde[K]
	vs serde.Serde[V]
}

// QueryKeyValueStore returns a view of the key-value store name, whose keys
// and values ks and vs encode: the serdes the store was materialized with.
// It fails with ErrUnknownStore if the topology has no such key-value
// store; queries fail with ErrStoreUnavailable while the store cannot be
// read (Kafka Streams' KafkaStreams.store with
// QueryableStoreTypes.keyValueStore()). With StaleStores the view also
// reads the local standby and restoring tasks, possibly behind the active.
func QueryKeyValueStore[K, V any](a *App, name string, ks serde.Serde[K], vs serde.Serde[V], opts ...QueryOption) (*KeyValueStoreView[K, V], error) {
	q, err := newStoreQuery(a, name, topology.KeyValueStore)
	if err != nil {
		return nil, err
	}
	q.stale = applyQueryOptions(opts).stale
	return &KeyValueStoreView[K, V]{q: q, ks: ks, vs: vs}, nil
}

// Get returns k's value; ok is false if no local task holds k.
func (s *KeyValueStoreView[K, V]) Get(k K) (v V, ok bool, err error) {
	kb, err := s.ks.Serialize(k)
	if err != nil {
		return v, false, err
	}
	err = s.q.read(func(r *pebblestore.Reader) (bool, error) {
		b, err := r.KeyValueStore(s.q.spec.Name).Get(kb)
		if err != nil || b == nil {
			return true, err
		}
		v, _, err = tsvalue.Decode(s.vs, b)
		ok = err == nil
		return false, err
	})
	return v, ok, err
}

// Range iterates over the keys in [from, to] (by their encoded bytes) and
// their values, in key order within each task (partition), task after
// task. A failed read ends the iteration with the error:
//
//	for kv, err := range view.Range("a", "m") {
//		if err != nil { ... }
//		use(kv.Key, kv.Value)
//	}
//
// App.Close waits for the loops in progress to end: never close the App
// from inside one.
func (s *KeyValueStoreView[K, V]) Range(from, to K) iter.Seq2[stream.KeyValue[K, V], error] {
	return func(yield func(stream.KeyValue[K, V], error) bool) {
		fb, err := s.ks.Serialize(from)
		if err != nil {
			yield(stream.KeyValue[K, V]{}, err)
			return
		}
		tb, err := s.ks.Serialize(to)
		if err != nil {
			yield(stream.KeyValue[K, V]{}, err)
			return
		}
		s.scan(func(st state.ReadOnlyKeyValueStore) state.Iterator { return st.Range(fb, tb) }, yield)
	}
}

// All iterates over every key and value of the local tasks, as Range does.
func (s *KeyValueStoreView[K, V]) All() iter.Seq2[stream.KeyValue[K, V], error] {
	return func(yield func(stream.KeyValue[K, V], error) bool) {
		s.scan(func(st state.ReadOnlyKeyValueStore) state.Iterator { return st.All() }, yield)
	}
}

func (s *KeyValueStoreView[K, V]) scan(open func(state.ReadOnlyKeyValueStore) state.Iterator, yield func(stream.KeyValue[K, V], error) bool) {
	stopped := false
	err := s.q.read(func(r *pebblestore.Reader) (bool, error) {
		it := open(r.KeyValueStore(s.q.spec.Name))
		defer it.Close()
		for it.Next() {
			kv, err := decodeKV(s.ks, s.vs, it.Key(), it.Value())
			if err != nil {
				return false, err
			}
			if !yield(kv, nil) {
				stopped = true
				return false, nil
			}
		}
		return true, it.Close()
	})
	if err != nil && !stopped {
		yield(stream.KeyValue[K, V]{}, err)
	}
}

func decodeKV[K, V any](ks serde.Serde[K], vs serde.Serde[V], kb, vb []byte) (stream.KeyValue[K, V], error) {
	var kv stream.KeyValue[K, V]
	var err error
	if kv.Key, err = ks.Deserialize(kb); err != nil {
		return kv, err
	}
	kv.Value, _, err = tsvalue.Decode(vs, vb)
	return kv, err
}

// ApproximateNumEntries returns how many keys the local tasks hold. The
// Pebble store counts them, so it takes time linear in the store's size.
func (s *KeyValueStoreView[K, V]) ApproximateNumEntries() (int64, error) {
	var n int64
	err := s.q.read(func(r *pebblestore.Reader) (bool, error) {
		c, err := r.KeyValueStore(s.q.spec.Name).ApproximateNumEntries()
		n += c
		return true, err
	})
	return n, err
}

// WindowStoreView is a read-only, typed view of a window store of the
// local active tasks: the store of a windowed Count, Aggregate or Reduce
// (Kafka Streams' ReadOnlyWindowStore). It is safe for concurrent use.
type WindowStoreView[K, V any] struct {
	q  storeQuery
	ks serde.Serde[K]
	vs serde.Serde[V]
}

// QueryWindowStore returns a view of the window store name, as
// QueryKeyValueStore does for key-value stores. ks encodes the grouping
// key (not the Windowed key).
func QueryWindowStore[K, V any](a *App, name string, ks serde.Serde[K], vs serde.Serde[V], opts ...QueryOption) (*WindowStoreView[K, V], error) {
	q, err := newStoreQuery(a, name, topology.WindowStore)
	if err != nil {
		return nil, err
	}
	q.stale = applyQueryOptions(opts).stale
	return &WindowStoreView[K, V]{q: q, ks: ks, vs: vs}, nil
}

// WindowValue is one window of a key: its start (milliseconds since the
// epoch) and value.
type WindowValue[V any] struct {
	Start int64
	Value V
}

// Fetch iterates over k's windows whose start is in [from, to]
// (milliseconds), in order of start. Expired windows are not returned.
func (s *WindowStoreView[K, V]) Fetch(k K, from, to int64) iter.Seq2[WindowValue[V], error] {
	return func(yield func(WindowValue[V], error) bool) {
		kb, err := s.ks.Serialize(k)
		if err != nil {
			yield(WindowValue[V]{}, err)
			return
		}
		stopped := false
		err = s.q.read(func(r *pebblestore.Reader) (bool, error) {
			st, err := r.WindowStore(s.q.spec.Name, s.q.spec.Window)
			if err != nil {
				return false, err
			}
			it := st.FetchRange(kb, from, to)
			defer it.Close()
			for it.Next() {
				v, _, err := tsvalue.Decode(s.vs, it.Value())
				if err != nil {
					return false, err
				}
				if !yield(WindowValue[V]{Start: it.Start(), Value: v}, nil) {
					stopped = true
					return false, nil
				}
			}
			return true, it.Close()
		})
		if err != nil && !stopped {
			yield(WindowValue[V]{}, err)
		}
	}
}

// SessionStoreView is a read-only, typed view of a session store of the
// local active tasks: the store of a session-windowed Count, Aggregate or
// Reduce (Kafka Streams' ReadOnlySessionStore). It is safe for concurrent
// use.
type SessionStoreView[K, V any] struct {
	q  storeQuery
	ks serde.Serde[K]
	vs serde.Serde[V]
}

// QuerySessionStore returns a view of the session store name, as
// QueryKeyValueStore does for key-value stores. ks encodes the grouping
// key.
func QuerySessionStore[K, V any](a *App, name string, ks serde.Serde[K], vs serde.Serde[V], opts ...QueryOption) (*SessionStoreView[K, V], error) {
	q, err := newStoreQuery(a, name, topology.SessionStore)
	if err != nil {
		return nil, err
	}
	q.stale = applyQueryOptions(opts).stale
	return &SessionStoreView[K, V]{q: q, ks: ks, vs: vs}, nil
}

// Fetch iterates over k's sessions, by end time then start: Key.Start and
// Key.End are the session's first and last record times.
func (s *SessionStoreView[K, V]) Fetch(k K) iter.Seq2[stream.KeyValue[stream.Windowed[K], V], error] {
	return func(yield func(stream.KeyValue[stream.Windowed[K], V], error) bool) {
		kb, err := s.ks.Serialize(k)
		if err != nil {
			yield(stream.KeyValue[stream.Windowed[K], V]{}, err)
			return
		}
		stopped := false
		err = s.q.read(func(r *pebblestore.Reader) (bool, error) {
			st, err := r.SessionStore(s.q.spec.Name, s.q.spec.Session)
			if err != nil {
				return false, err
			}
			it := st.Fetch(kb)
			defer it.Close()
			for it.Next() {
				v, _, err := tsvalue.Decode(s.vs, it.Value())
				if err != nil {
					return false, err
				}
				w := stream.Windowed[K]{Key: k, Start: it.Start(), End: it.End()}
				if !yield(stream.KV(w, v), nil) {
					stopped = true
					return false, nil
				}
			}
			return true, it.Close()
		})
		if err != nil && !stopped {
			yield(stream.KeyValue[stream.Windowed[K], V]{}, err)
		}
	}
}

// storesOf names the stores of sub-topology sub, sorted.
func storesOf(topo *topology.Topology, sub int) []string {
	for _, s := range topo.SubTopologies() {
		if s.ID() == sub {
			names := s.Stores()
			slices.SortFunc(names, strings.Compare)
			return names
		}
	}
	return nil
}
