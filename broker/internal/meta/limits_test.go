package meta

import (
	"errors"
	"testing"
)

// onBrokers is n partitions whose replicas are the given brokers.
func onBrokers(n int, replicas ...int32) []Partition {
	out := make([]Partition, n)
	for i := range out {
		out[i] = Partition{Index: int32(i), Leader: replicas[0], Replicas: append([]int32(nil), replicas...), ISR: append([]int32(nil), replicas...)}
	}
	return out
}

// max.broker.partitions in the state machine: each broker's replicas are
// counted against its own limit, in commit order, and a command that
// would pass one is refused whole.
func TestApplyPartitionLimits(t *testing.T) {
	s := newState()
	for id := int32(1); id <= 3; id++ {
		if err := s.apply(&command{Op: opRegisterBroker, Broker: &Broker{ID: id, MaxPartitions: 4}}); err != nil {
			t.Fatal(err)
		}
	}
	create := func(name string, internal bool, parts []Partition) error {
		t := &Topic{Name: name, Internal: internal, Partitions: parts}
		t.ID[0] = byte(len(name)) // distinct enough for these names
		t.ID[1] = name[0]
		return s.apply(&command{Op: opCreateTopic, Topic: t})
	}
	replicasOn := func(id int32) int {
		n := 0
		for _, t := range s.Topics {
			for _, p := range t.Partitions {
				for _, r := range p.Replicas {
					if r == id {
						n++
					}
				}
			}
		}
		return n
	}

	// Broker 1 fills up; the cluster as a whole has room for 8 more,
	// but none of it is broker 1's.
	if err := create("a", false, onBrokers(3, 1)); err != nil {
		t.Fatal(err)
	}
	if err := create("b", false, onBrokers(2, 1)); !errors.Is(err, ErrPartitionLimit) {
		t.Fatalf("2 more partitions on broker 1 holding 3 of 4: %v, want ErrPartitionLimit", err)
	}
	if s.Topics["b"] != nil || replicasOn(1) != 3 {
		t.Fatalf("a refused topic left state behind: b=%v, broker 1 holds %d", s.Topics["b"], replicasOn(1))
	}
	if err := create("b", false, onBrokers(2, 2, 3)); err != nil {
		t.Fatalf("2 partitions on brokers 2 and 3: %v", err)
	}

	// Two requests placed from the same view, each of which fits alone:
	// the first to commit takes the room, the second is refused.
	first, second := onBrokers(2, 2), onBrokers(2, 2)
	if err := create("c", false, first); err != nil {
		t.Fatal(err)
	}
	if err := create("d", false, second); !errors.Is(err, ErrPartitionLimit) {
		t.Fatalf("second racing topic: %v, want ErrPartitionLimit", err)
	}

	// CreatePartitions is counted the same way.
	grow := func(name string, add []Partition) error {
		return s.apply(&command{Op: opCreatePartitions, Name: name, Count: int32(len(s.Topics[name].Partitions) + len(add)), Partitions: add})
	}
	if err := grow("a", onBrokers(2, 1)); !errors.Is(err, ErrPartitionLimit) {
		t.Fatalf("growing a past broker 1's limit: %v, want ErrPartitionLimit", err)
	}
	if len(s.Topics["a"].Partitions) != 3 {
		t.Fatalf("a refused growth changed a: %d partitions", len(s.Topics["a"].Partitions))
	}
	if err := grow("a", onBrokers(1, 1)); err != nil {
		t.Fatalf("growing a to broker 1's limit: %v", err)
	}

	// Internal topics are counted but never refused.
	if err := create("__consumer_offsets", true, onBrokers(3, 1, 2, 3)); err != nil {
		t.Fatalf("internal topic on full brokers: %v", err)
	}
	if got := replicasOn(1); got != 7 {
		t.Fatalf("broker 1 holds %d replicas, want 7", got)
	}
	// ... and count: broker 3 held 2 of 4 before it, 5 now.
	if err := create("e", false, onBrokers(1, 3)); !errors.Is(err, ErrPartitionLimit) {
		t.Fatalf("a partition on broker 3, past its limit with the internal topic: %v, want ErrPartitionLimit", err)
	}

	// A broker registered without a limit (0) takes any number.
	if err := s.apply(&command{Op: opRegisterBroker, Broker: &Broker{ID: 4}}); err != nil {
		t.Fatal(err)
	}
	if err := create("f", false, onBrokers(100, 4)); err != nil {
		t.Fatalf("100 partitions on a broker without a limit: %v", err)
	}
}
