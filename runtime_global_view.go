package runnel

import "github.com/runnel-dev/runnel/state"

// Read-only views of the global stores, as tasks see them (Kafka Streams
// hands processors a read-only wrapper of a global store too). The runtime
// owns the stores: Flush and Close are no-ops for a task.

type readOnlyKV struct{ state.KeyValueStore }

func (readOnlyKV) Put(key, value []byte) error                   { return errGlobalReadOnly }
func (readOnlyKV) PutIfAbsent(key, value []byte) ([]byte, error) { return nil, errGlobalReadOnly }
func (readOnlyKV) Delete(key []byte) ([]byte, error)             { return nil, errGlobalReadOnly }
func (readOnlyKV) Flush() error                                  { return nil }
func (readOnlyKV) Close() error                                  { return nil }

type readOnlyWindow struct{ state.WindowStore }

func (readOnlyWindow) Put(key []byte, start int64, value []byte) error { return errGlobalReadOnly }
func (readOnlyWindow) Flush() error                                    { return nil }
func (readOnlyWindow) Close() error                                    { return nil }

type readOnlySession struct{ state.SessionStore }

func (readOnlySession) Put(key []byte, start, end int64, value []byte) error {
	return errGlobalReadOnly
}
func (readOnlySession) Remove(key []byte, start, end int64) error { return errGlobalReadOnly }
func (readOnlySession) Flush() error                              { return nil }
func (readOnlySession) Close() error                              { return nil }
