package pebblestore

import (
	"github.com/cockroachdb/pebble"
)

// kvIter adapts a Pebble iterator over one key-value store, stripping the
// first skip bytes (the store prefix) from keys.
type kvIter struct {
	it      *pebble.Iterator
	release func()
	reverse bool
	started bool
	skip    int
	err     error
}

func (i *kvIter) Next() bool {
	if i.it == nil {
		return false
	}
	var ok bool
	switch {
	case i.started && i.reverse:
		ok = i.it.Prev()
	case i.started:
		ok = i.it.Next()
	case i.reverse:
		ok = i.it.Last()
	default:
		ok = i.it.First()
	}
	i.started = true
	if !ok {
		i.err = i.it.Error()
	}
	return ok
}

func (i *kvIter) Key() []byte { return i.it.Key()[i.skip:] }

func (i *kvIter) Value() []byte { return nonNil(i.it.Value()) }

func (i *kvIter) Err() error { return i.err }

func (i *kvIter) Close() error {
	if i.it != nil {
		if err := i.it.Close(); i.err == nil {
			i.err = err
		}
		i.it = nil
		i.release()
	}
	return i.err
}
