package txn

import (
	"fmt"
	"time"
)

// State is a transactional id's state, numbered as Kafka stores it in
// __transaction_state.
type State int8

// The states. A transactional id starts Empty; its first partition makes
// it Ongoing; EndTxn moves it to PrepareCommit or PrepareAbort (the
// decision, durable before any marker is written), and once every
// partition has its marker to CompleteCommit or CompleteAbort, from which
// the next partition starts a new transaction. Dead ids have expired.
// PrepareEpochFence is Kafka's transient state for an abort forced by a
// new producer or a timeout; it is never stored here.
const (
	Empty State = iota
	Ongoing
	PrepareCommit
	PrepareAbort
	CompleteCommit
	CompleteAbort
	Dead
	PrepareEpochFence
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

func (s State) String() string {
	if int(s) >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int8(s))
}

// ParseState returns the state named name, as Kafka's tools name them.
func ParseState(name string) (State, bool) {
	for i, n := range stateNames {
		if n == name {
			return State(i), true
		}
	}
	return 0, false
}

// preparing reports whether markers are being written.
func (s State) preparing() bool { return s == PrepareCommit || s == PrepareAbort }

// TopicPartition names a partition in a transaction.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// txnMeta is one transactional id. Every field is guarded by its shard's
// mutex.
type txnMeta struct {
	id string
	// pid and epoch are the producer id and epoch in use. lastPid is the
	// one before (after a rotation on epoch exhaustion), and lastEpoch the
	// epoch before the last bump, so a producer retrying InitProducerId
	// with what it had (KIP-360) is recognised; lastEpoch is not stored.
	pid, lastPid int64
	epoch        int16
	lastEpoch    int16
	// nextPid is the producer id the transaction moves to once its
	// markers are written, when EndTxn exhausted the epoch (KIP-890), or
	// -1.
	nextPid int64
	// tv is the transaction version of the client's last EndTxn: 2 for
	// v5 (KIP-890 part 2), whose markers carry a bumped epoch that the
	// partitions check (Marker.TV2), 1 before; 0 until the first.
	tv      int16
	timeout time.Duration
	state   State
	// parts are the partitions of the ongoing (or completing) transaction.
	parts   map[TopicPartition]struct{}
	start   time.Time // when the transaction began; zero when none
	updated time.Time
	// done is non-nil while markers are being written (state preparing);
	// it is closed when the transaction has completed.
	done chan struct{}
}

func newMeta(id string, pid int64, timeout time.Duration, now time.Time) *txnMeta {
	return &txnMeta{
		id: id, pid: pid, lastPid: -1, nextPid: -1, lastEpoch: -1,
		timeout: timeout, state: Empty, updated: now,
		parts: make(map[TopicPartition]struct{}),
	}
}
