// Package storetest holds the test suite every state store implementation
// passes (TestKeyValueStore, TestWindowStore, TestSessionStore) and helpers
// for tests that use stores: a ChangeLogger that records, and readers that
// drain iterators into slices.
package storetest

import (
	"bytes"
	"fmt"

	"github.com/runnel-dev/runnel/state"
)

// Change is one changelog record a store logged.
type Change struct {
	Key, Value []byte // Value nil: tombstone
	Timestamp  int64
}

func (c Change) String() string {
	if c.Value == nil {
		return fmt.Sprintf("%q=<tombstone>@%d", c.Key, c.Timestamp)
	}
	return fmt.Sprintf("%q=%q@%d", c.Key, c.Value, c.Timestamp)
}

// Recorder is a state.ChangeLogger that keeps every change it is given.
type Recorder struct {
	Changes []Change
}

var _ state.ChangeLogger = (*Recorder)(nil)

// LogChange implements state.ChangeLogger.
func (r *Recorder) LogChange(key, value []byte, timestamp int64) {
	r.Changes = append(r.Changes, Change{bytes.Clone(key), bytes.Clone(value), timestamp})
}

// Take returns the changes recorded since the last Take and forgets them.
func (r *Recorder) Take() []Change {
	c := r.Changes
	r.Changes = nil
	return c
}

// KV is a key-value pair read from a store.
type KV struct {
	Key, Value string
}

// Window is a window read from a window store.
type Window struct {
	Key   string
	Start int64
	Value string
}

// Session is a session read from a session store.
type Session struct {
	Key        string
	Start, End int64
	Value      string
}

// ReadAll drains and closes it.
func ReadAll(it state.Iterator) ([]KV, error) {
	var out []KV
	for it.Next() {
		out = append(out, KV{string(it.Key()), string(it.Value())})
	}
	return out, it.Close()
}

// ReadWindows drains and closes it.
func ReadWindows(it state.WindowIterator) ([]Window, error) {
	var out []Window
	for it.Next() {
		out = append(out, Window{string(it.Key()), it.Start(), string(it.Value())})
	}
	return out, it.Close()
}

// ReadSessions drains and closes it.
func ReadSessions(it state.SessionIterator) ([]Session, error) {
	var out []Session
	for it.Next() {
		out = append(out, Session{string(it.Key()), it.Start(), it.End(), string(it.Value())})
	}
	return out, it.Close()
}
