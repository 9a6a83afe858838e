package memstore_test

import (
	"testing"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/memstore"
	"github.com/runnel-dev/runnel/state/storetest"
)

func TestKeyValueStore(t *testing.T) {
	storetest.TestKeyValueStore(t, func(t *testing.T) state.KeyValueStore {
		return memstore.NewKeyValueStore("kv")
	})
}

func TestWindowStore(t *testing.T) {
	storetest.TestWindowStore(t, func(t *testing.T, opts state.WindowOptions) state.WindowStore {
		s, err := memstore.NewWindowStore("win", opts)
		storetest.Must(t, err)
		return s
	})
}

func TestSessionStore(t *testing.T) {
	storetest.TestSessionStore(t, func(t *testing.T, opts state.SessionOptions) state.SessionStore {
		s, err := memstore.NewSessionStore("ses", opts)
		storetest.Must(t, err)
		return s
	})
}
