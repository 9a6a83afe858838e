package broker

import (
	"reflect"
	"sync"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// quotaMemo remembers what resolveQuota answered for each quota key, user
// and client id, for one version of the quotas. Resolving walks up to
// eight entities, each a map lookup on a key of three names, twice per
// Produce: a few microseconds that every request of every connection paid
// once any quota existed. The metadata replaces the quotas map on every
// change and never modifies one (meta.Cluster), so the map's identity is
// its version.
type quotaMemo struct {
	mu sync.Mutex // guards the following
	// q is the quotas the entries were resolved in; holding it keeps its
	// address from being reused by a later map.
	q       meta.Quotas
	entries map[quotaMemoKey]quotaMemoEntry
}

type quotaMemoKey struct{ quota, user, clientID string }

type quotaMemoEntry struct {
	bound float64
	sk    sensorKey
	ok    bool
}

// quotaMemoMax bounds the entries kept: past it (client ids that come and
// go) the memo starts over.
const quotaMemoMax = 10_000

// resolve is resolveQuota(q, key, user, clientID), remembered.
func (m *quotaMemo) resolve(q meta.Quotas, key, user, clientID string) (float64, sensorKey, bool) {
	k := quotaMemoKey{key, user, clientID}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil || len(m.entries) >= quotaMemoMax || !sameQuotas(m.q, q) {
		m.q, m.entries = q, make(map[quotaMemoKey]quotaMemoEntry)
	}
	e, found := m.entries[k]
	if !found {
		e.bound, e.sk, e.ok = resolveQuota(q, key, user, clientID)
		m.entries[k] = e
	}
	return e.bound, e.sk, e.ok
}

// sameQuotas reports whether a and b are the same map, not equal ones.
func sameQuotas(a, b meta.Quotas) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
