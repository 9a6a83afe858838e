package cache

import (
	"container/list"

	"github.com/runnel-dev/runnel/state/internal/treap"
)

// dirtyIndex is the values of a cached store's dirty entries in key order,
// which its iterators merge with the store below. Keeping it up costs an
// ordered insert with allocations on every write and an ordered delete on
// every flush; for a store that is never iterated (an aggregation reads
// and writes single keys) that was the largest cost of the cache. So the
// index is built from the write order when an iterator first wants it,
// kept up from then on, and let go when a flush leaves nothing dirty: a
// store that is iterated pays as before, one that is not pays nothing.
//
// Invariant: m is nil, or it holds exactly the dirty entries of the
// store, by key, with their values.
type dirtyIndex[K any] struct {
	m   *treap.Map[K, []byte] // nil: not kept
	cmp func(a, b K) int
	key func(e *entry) K // the entry's key in the index
}

func newDirtyIndex[K any](cmp func(a, b K) int, key func(e *entry) K) dirtyIndex[K] {
	return dirtyIndex[K]{cmp: cmp, key: key}
}

// set records the write of the dirty e, if the index is kept.
func (d *dirtyIndex[K]) set(e *entry) {
	if d.m != nil {
		d.m.Set(d.key(e), e.value)
	}
}

// delete records that e is no longer dirty, if the index is kept.
func (d *dirtyIndex[K]) delete(e *entry) {
	if d.m != nil {
		d.m.Delete(d.key(e))
	}
}

// sorted returns the index, building it from order, the store's dirty
// entries, if it is not kept. Its iterators walk a snapshot.
func (d *dirtyIndex[K]) sorted(order *list.List) *treap.Map[K, []byte] {
	if d.m == nil {
		d.m = treap.New[K, []byte](d.cmp)
		for el := order.Front(); el != nil; el = el.Next() {
			e := el.Value.(*entry)
			d.m.Set(d.key(e), e.value)
		}
	}
	return d.m
}

// release stops keeping the index if no entry is dirty (order is empty):
// until an iterator wants it again, writes need not keep it.
func (d *dirtyIndex[K]) release(order *list.List) {
	if order.Len() == 0 {
		d.m = nil
	}
}
