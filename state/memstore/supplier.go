// Package memstore holds in-memory state stores: the simple reference
// implementations of state.KeyValueStore, state.WindowStore and
// state.SessionStore, each a persistent ordered map (package
// state/internal/treap) so that iterators walk a snapshot.
//
// Contents live only as long as the process; a task using them restores
// from its changelog on every start.
package memstore

import "github.com/runnel-dev/runnel/state"

// Supplier is a state.Supplier of in-memory stores. Its zero value is ready.
type Supplier struct{}

var _ state.Supplier = Supplier{}

// KeyValueStore implements state.Supplier.
func (Supplier) KeyValueStore(name string) (state.KeyValueStore, error) {
	return NewKeyValueStore(name), nil
}

// WindowStore implements state.Supplier.
func (Supplier) WindowStore(name string, opts state.WindowOptions) (state.WindowStore, error) {
	return NewWindowStore(name, opts)
}

// SessionStore implements state.Supplier.
func (Supplier) SessionStore(name string, opts state.SessionOptions) (state.SessionStore, error) {
	return NewSessionStore(name, opts)
}
