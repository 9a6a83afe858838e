package meta

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// ErrPartitionLimit refuses partitions that would take a broker past the
// max.broker.partitions it registered with (Broker.MaxPartitions).
var ErrPartitionLimit = errors.New("meta: partition limit reached")

// checkPartitionLimits refuses add, new partitions of topic, when they
// would put more replicas on a broker than its MaxPartitions, counting
// the replicas already assigned to it (KIP-578's per-broker limit). It
// runs in apply, so requests racing each other are counted in the order
// they commit and the last to pass the limit is refused whole. Internal
// topics are counted but never refused: a broker must be able to create
// its group and transaction topics whatever its limit.
func checkPartitionLimits(brokers map[int32]Broker, topics map[string]*Topic, topic string, internal bool, add []Partition) error {
	if internal {
		return nil
	}
	adding := make(map[int32]int64)
	for _, p := range add {
		for _, r := range p.Replicas {
			if brokers[r].MaxPartitions > 0 {
				adding[r]++
			}
		}
	}
	if len(adding) == 0 {
		return nil
	}
	held := make(map[int32]int64, len(adding))
	for _, t := range topics {
		for _, p := range t.Partitions {
			for _, r := range p.Replicas {
				if _, ok := adding[r]; ok {
					held[r]++
				}
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(adding)) {
		if limit := int64(brokers[id].MaxPartitions); held[id]+adding[id] > limit {
			return fmt.Errorf("%w: topic %s would put %d partition replicas on broker %d, which holds %d of its max.broker.partitions %d",
				ErrPartitionLimit, topic, adding[id], id, held[id], limit)
		}
	}
	return nil
}

// CheckNewPartitions reports whether new partitions of topic would pass
// the brokers' partition limits in the cluster as cl sees it, as apply
// would check them; for requests that only validate.
func (cl *Cluster) CheckNewPartitions(topic string, internal bool, add []Partition) error {
	return checkPartitionLimits(cl.Brokers, cl.Topics, topic, internal, add)
}

// placeTopic places a new topic's partitions as CreateTopic does: as
// spec assigns them, or spread over the live brokers.
func placeTopic(cl *Cluster, spec TopicSpec) ([]Partition, error) {
	if len(spec.Assignments) > 0 {
		return manualReplicas(cl.Brokers, spec.Assignments)
	}
	return placeReplicas(cl.Brokers, 0, spec.NumPartitions, spec.ReplicationFactor)
}

// ValidateNewTopic checks spec as CreateTopic and the state machine
// would, against the metadata as it is now, and creates nothing
// (CreateTopics with validate_only).
func (s *Store) ValidateNewTopic(spec TopicSpec) error {
	if err := ValidateTopicName(spec.Name); err != nil {
		return err
	}
	cl := s.Cluster()
	if cl.Topics[spec.Name] != nil {
		return fmt.Errorf("%w: %s", ErrTopicExists, spec.Name)
	}
	parts, err := placeTopic(cl, spec)
	if err != nil {
		return err
	}
	return cl.CheckNewPartitions(spec.Name, spec.Internal, parts)
}

// ValidateNewPartitions checks growing topic name to count partitions as
// CreatePartitions and the state machine would, and changes nothing
// (CreatePartitions with validate_only).
func (s *Store) ValidateNewPartitions(name string, count int32) error {
	t, parts, err := s.placeNewPartitions(name, count)
	if err != nil {
		return err
	}
	return s.Cluster().CheckNewPartitions(name, t.Internal, parts)
}
