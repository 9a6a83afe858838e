package meta

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
)

// fsm adapts the state to hashicorp/raft. Apply, Snapshot and Restore are
// called by raft one at a time on its FSM goroutine; the only other reader
// is Store, which sees the state through the views fsm publishes.
type fsm struct {
	st      *state
	publish func(st *state, index uint64)
}

// applyResult is what raft hands back to the proposer of an entry.
type applyResult struct{ err error }

func (f *fsm) Apply(l *raft.Log) any {
	f.st.AppliedIndex = l.Index
	defer f.publish(f.st, l.Index)
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		// Entries are written by this package only; one that does not
		// decode is refused rather than crashing every replica.
		return applyResult{fmt.Errorf("meta: decode entry %d: %w", l.Index, err)}
	}
	return applyResult{f.st.apply(&c)}
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	// Encode now, on the FSM goroutine, so later applies cannot race
	// with the write.
	data, err := json.Marshal(f.st)
	if err != nil {
		return nil, err
	}
	return snapshot(data), nil
}

func (f *fsm) Restore(r io.ReadCloser) error {
	defer r.Close()
	st := newState()
	if err := json.NewDecoder(r).Decode(st); err != nil {
		return fmt.Errorf("meta: restore snapshot: %w", err)
	}
	if st.Brokers == nil {
		st.Brokers = make(map[int32]Broker)
	}
	if st.Topics == nil {
		st.Topics = make(map[string]*Topic)
	}
	*f.st = *st
	f.publish(f.st, st.AppliedIndex)
	return nil
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (snapshot) Release() {}
