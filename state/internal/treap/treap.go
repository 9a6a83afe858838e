// Package treap holds a persistent ordered map: a treap whose writes copy
// the path they change instead of changing nodes in place. An iterator holds
// the root it started from, so it walks a snapshot that later writes neither
// change nor disturb, at the cost of O(log n) small allocations per write.
//
// A Map is not safe for concurrent use; its iterators may be used while the
// map is being written, by the same goroutine.
package treap

// Map is an ordered map from K to V under the order cmp.
//
// Invariant: every node's prio is >= the prio of its children (heap order),
// and keys are in cmp order in-order (search-tree order).
type Map[K, V any] struct {
	root *node[K, V]
	n    int
	cmp  func(a, b K) int
	rng  uint64
}

type node[K, V any] struct {
	key         K
	val         V
	prio        uint64
	left, right *node[K, V]
}

// New returns an empty map ordered by cmp, which returns <0, 0 or >0.
func New[K, V any](cmp func(a, b K) int) *Map[K, V] {
	return &Map[K, V]{cmp: cmp, rng: 0x9e3779b97f4a7c15}
}

// Len is the number of keys in m.
func (m *Map[K, V]) Len() int { return m.n }

// Clear removes every key. Open iterators keep their snapshot.
func (m *Map[K, V]) Clear() { m.root, m.n = nil, 0 }

// Get returns key's value and whether key is in m.
func (m *Map[K, V]) Get(key K) (V, bool) {
	for t := m.root; t != nil; {
		switch c := m.cmp(key, t.key); {
		case c < 0:
			t = t.left
		case c > 0:
			t = t.right
		default:
			return t.val, true
		}
	}
	var zero V
	return zero, false
}

// Set sets key to val and returns the value key had, if any.
func (m *Map[K, V]) Set(key K, val V) (old V, existed bool) {
	// xorshift64: priorities need not be unpredictable, only spread.
	m.rng ^= m.rng << 13
	m.rng ^= m.rng >> 7
	m.rng ^= m.rng << 17
	m.root, old, existed = m.insert(m.root, key, val, m.rng)
	if !existed {
		m.n++
	}
	return old, existed
}

func (m *Map[K, V]) insert(t *node[K, V], key K, val V, prio uint64) (*node[K, V], V, bool) {
	if t == nil {
		var zero V
		return &node[K, V]{key: key, val: val, prio: prio}, zero, false
	}
	n := *t // t may be shared with snapshots: change a copy.
	var old V
	var existed bool
	switch c := m.cmp(key, t.key); {
	case c == 0:
		old, n.val = n.val, val
		return &n, old, true
	case c < 0:
		n.left, old, existed = m.insert(t.left, key, val, prio)
		if n.left.prio > n.prio { // n.left is a fresh copy: rotate right.
			l := n.left
			n.left, l.right = l.right, &n
			return l, old, existed
		}
	default:
		n.right, old, existed = m.insert(t.right, key, val, prio)
		if n.right.prio > n.prio { // rotate left
			r := n.right
			n.right, r.left = r.left, &n
			return r, old, existed
		}
	}
	return &n, old, existed
}

// Delete removes key and returns the value it had, if any.
func (m *Map[K, V]) Delete(key K) (old V, existed bool) {
	if old, existed = m.Get(key); !existed {
		return old, false
	}
	m.root = m.remove(m.root, key)
	m.n--
	return old, true
}

// remove copies the path to key, which is in t, and splices key's node out.
func (m *Map[K, V]) remove(t *node[K, V], key K) *node[K, V] {
	c := m.cmp(key, t.key)
	if c == 0 {
		return merge(t.left, t.right)
	}
	n := *t
	if c < 0 {
		n.left = m.remove(t.left, key)
	} else {
		n.right = m.remove(t.right, key)
	}
	return &n
}

// merge joins a and b, whose keys are all below b's, copying the spine.
func merge[K, V any](a, b *node[K, V]) *node[K, V] {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.prio > b.prio:
		n := *a
		n.right = merge(a.right, b)
		return &n
	default:
		n := *b
		n.left = merge(a, b.left)
		return &n
	}
}

// Iter walks a snapshot of a Map in one direction.
type Iter[K, V any] struct {
	stack   []*node[K, V]
	reverse bool
	cur     *node[K, V]
}

// Ascend iterates in ascending order from the first key >= from, or from
// the first key if hasFrom is false.
func (m *Map[K, V]) Ascend(from K, hasFrom bool) *Iter[K, V] {
	it := &Iter[K, V]{}
	for t := m.root; t != nil; {
		if !hasFrom || m.cmp(t.key, from) >= 0 {
			it.stack = append(it.stack, t)
			t = t.left
		} else {
			t = t.right
		}
	}
	return it
}

// Descend iterates in descending order from the last key <= from, or from
// the last key if hasFrom is false.
func (m *Map[K, V]) Descend(from K, hasFrom bool) *Iter[K, V] {
	it := &Iter[K, V]{reverse: true}
	for t := m.root; t != nil; {
		if !hasFrom || m.cmp(t.key, from) <= 0 {
			it.stack = append(it.stack, t)
			t = t.right
		} else {
			t = t.left
		}
	}
	return it
}

// Next moves to the next key and reports whether there is one.
func (it *Iter[K, V]) Next() bool {
	if len(it.stack) == 0 {
		it.cur = nil
		return false
	}
	n := it.stack[len(it.stack)-1]
	it.stack = it.stack[:len(it.stack)-1]
	it.cur = n
	if it.reverse {
		for t := n.left; t != nil; t = t.right {
			it.stack = append(it.stack, t)
		}
	} else {
		for t := n.right; t != nil; t = t.left {
			it.stack = append(it.stack, t)
		}
	}
	return true
}

// Key is the current key.
func (it *Iter[K, V]) Key() K { return it.cur.key }

// Value is the current value.
func (it *Iter[K, V]) Value() V { return it.cur.val }
