package meta

import (
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
)

// Errors returned by the state machine; wrapped with detail, test with
// errors.Is.
var (
	ErrTopicExists              = errors.New("meta: topic already exists")
	ErrUnknownTopic             = errors.New("meta: unknown topic")
	ErrInvalidTopic             = errors.New("meta: invalid topic name")
	ErrInvalidPartitions        = errors.New("meta: invalid partitions")
	ErrInvalidReplicationFactor = errors.New("meta: invalid replication factor")
	ErrNotController            = errors.New("meta: this node is not the controller")
	ErrClosed                   = errors.New("meta: store closed")

	errIDConflict     = errors.New("meta: producer id block taken")
	errConfigConflict = errors.New("meta: configs changed since they were read")
)

// Cluster is an immutable view of the metadata at one applied index. Callers
// must not modify it: the store hands the same value to every reader until
// the next change.
type Cluster struct {
	// ClusterID is chosen once, when the cluster is first bootstrapped.
	ClusterID string
	// ControllerID is the broker whose Raft node leads, or -1.
	ControllerID int32
	Brokers      map[int32]Broker
	Topics       map[string]*Topic
	TopicsByID   map[[16]byte]*Topic
	// Index is the Raft log index this view reflects.
	Index uint64
	// NextProducerID is the first producer id not yet handed out (see
	// Store.AllocateProducerIDs).
	NextProducerID int64
	// BrokerConfigs are the dynamic broker configs by Kafka resource
	// name: "" holds the cluster-wide defaults, "1" broker 1's own. The
	// inner maps are shared between views and never modified.
	BrokerConfigs map[string]map[string]string
	// ACLs are the authorizer's bindings (acls.go).
	ACLs *ACLSet
	// ScramUsers are the SCRAM credentials by user and mechanism
	// (scram.go), and Quotas the client quotas (quotas.go). Shared
	// between views and never modified.
	ScramUsers map[string]map[string]ScramCredential
	Quotas     Quotas
}

// Broker is a registered broker.
type Broker struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
	Rack string `json:"rack,omitempty"`
	// Listeners is every listener of the broker with the address its
	// clients are told, "NAME://HOST:PORT,..." (KRaft's broker
	// registration endpoints): a client that came in on a listener is
	// told the other brokers' listener of the same name. Host and Port
	// are its inter-broker listener's. Empty for a broker registered
	// before listeners were recorded.
	Listeners string `json:"listeners,omitempty"`
	// MaxPartitions is the broker's max.broker.partitions: the partition
	// replicas it may be assigned, checked as topics and partitions are
	// created (limits.go). 0 means no limit.
	MaxPartitions int32 `json:"maxPartitions,omitempty"`
	// Fenced is set by the controller when the broker stops heartbeating
	// (broker.session.timeout.ms): it leads nothing and is in no ISR it
	// could be left out of, and clients are not told of it.
	Fenced bool `json:"fenced,omitempty"`
	// ShuttingDown is set with Fenced by a controlled shutdown
	// (operations.go): the broker still heartbeats while it stops, and
	// must not be unfenced for it. Registering again clears both.
	ShuttingDown bool `json:"shuttingDown,omitempty"`
	// DirectoryID is the id of the node's metadata directory
	// (directory.go), zero for a broker registered before it had one.
	DirectoryID [16]byte `json:"directoryId,omitzero"`
	// Incarnation is random for every start of the broker's process
	// (KRaft's incarnation id): a registration with a new one is a
	// restart, which moves what the broker leads to a new leader epoch
	// (state.restarted).
	Incarnation [16]byte `json:"incarnation,omitzero"`
}

// Topic is a topic and its partitions.
type Topic struct {
	Name       string            `json:"name"`
	ID         [16]byte          `json:"id"`
	Internal   bool              `json:"internal,omitempty"`
	Partitions []Partition       `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// IDString is the topic id in hex, as it appears in logs.
func (t *Topic) IDString() string { return hex.EncodeToString(t.ID[:]) }

// Partition is one partition's placement.
type Partition struct {
	Index int32 `json:"index"`
	// Leader is the replica that serves reads and writes, or -1.
	Leader int32 `json:"leader"`
	// LeaderEpoch grows by one every time the leader changes; batches are
	// stamped with it.
	LeaderEpoch int32   `json:"leaderEpoch"`
	Replicas    []int32 `json:"replicas"`
	// ISR is the in-sync replica set. Invariants: ISR ⊆ Replicas; Leader
	// is in ISR when Leader >= 0.
	ISR []int32 `json:"isr"`
	// PartitionEpoch grows by one with every change to the partition
	// (leader or ISR); an AlterPartition names the one it was based on.
	PartitionEpoch int32 `json:"partitionEpoch,omitempty"`
	// AddingReplicas and RemovingReplicas describe a reassignment in
	// progress (operations.go): Replicas is the target followed by the
	// replicas being removed; the adding ones are in the target but not
	// in the original. Both are empty when none is in progress.
	AddingReplicas   []int32 `json:"addingReplicas,omitempty"`
	RemovingReplicas []int32 `json:"removingReplicas,omitempty"`
}

// TopicSpec asks for a new topic.
type TopicSpec struct {
	Name              string
	NumPartitions     int32
	ReplicationFactor int16
	// Assignments, when set, gives each partition's replicas (the first
	// leads) and overrides NumPartitions and ReplicationFactor.
	Assignments [][]int32
	Configs     map[string]string
	Internal    bool
}

// ValidateTopicName applies Kafka's rules: 1 to 249 characters of
// [a-zA-Z0-9._-], and not "." or "..".
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the empty string is not allowed", ErrInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidTopic, name)
	case len(name) > 249:
		return fmt.Errorf("%w: %d characters is longer than the maximum 249", ErrInvalidTopic, len(name))
	}
	for _, c := range []byte(name) {
		ok := c == '.' || c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !ok {
			return fmt.Errorf("%w: %q contains a character other than ASCII alphanumerics, '.', '_' and '-'", ErrInvalidTopic, name)
		}
	}
	return nil
}

// state is the replicated state machine's data. It is changed only by
// apply, on the Raft apply goroutine, and read through cluster views.
type state struct {
	ClusterID string            `json:"clusterId"`
	Brokers   map[int32]Broker  `json:"brokers"`
	Topics    map[string]*Topic `json:"topics"`
	// NextProducerID is the first producer id no broker has been given.
	// Invariant: it never decreases.
	NextProducerID int64 `json:"nextProducerId,omitempty"`
	// BrokerConfigs are the dynamic broker configs (see
	// Cluster.BrokerConfigs). apply replaces an inner map, never edits
	// it, so views may share them.
	BrokerConfigs map[string]map[string]string `json:"brokerConfigs,omitempty"`
	// ACLs are the authorizer's bindings, in the order they were
	// created (acls.go); aclSet indexes them, nil until needed.
	ACLs   []ACL `json:"acls,omitempty"`
	aclSet *ACLSet
	// ScramUsers and Quotas: see Cluster. apply replaces them (and their
	// inner maps), never edits them.
	ScramUsers map[string]map[string]ScramCredential `json:"scramUsers,omitempty"`
	Quotas     Quotas                                `json:"quotas,omitempty"`
	// AppliedIndex is the Raft index of the last entry applied, kept in
	// snapshots so a node restored from one knows how far it has
	// applied (Store.waitApplied, catchUp).
	AppliedIndex uint64 `json:"appliedIndex,omitempty"`
}

func newState() *state {
	return &state{Brokers: make(map[int32]Broker), Topics: make(map[string]*Topic)}
}

// command is one Raft log entry. Exactly one field besides Op is set.
// Everything random (topic ids, the cluster id) is chosen by the proposer
// and carried in the command, so applying is deterministic.
type command struct {
	Op string `json:"op"`

	ClusterID  string            `json:"clusterId,omitempty"`
	Broker     *Broker           `json:"broker,omitempty"`
	Topic      *Topic            `json:"topic,omitempty"`
	Name       string            `json:"name,omitempty"`
	Count      int32             `json:"count,omitempty"`
	Configs    map[string]string `json:"configs,omitempty"`
	Partitions []Partition       `json:"partitions,omitempty"`
	// First and IDs allocate producer ids: the block [First, First+IDs).
	First int64 `json:"first,omitempty"`
	IDs   int64 `json:"ids,omitempty"`
	// IfConfigs, when Conditional is set, is what a config command's
	// proposer read: the command applies only if the configs are still
	// exactly these (a compare-and-set, so concurrent read-modify-write
	// changes do not lose each other's edits).
	IfConfigs   map[string]string `json:"ifConfigs,omitempty"`
	Conditional bool              `json:"conditional,omitempty"`
	// BrokerID names the broker of a fence or unfence.
	BrokerID int32 `json:"brokerId,omitempty"`
	// Change is an AlterPartition.
	Change *PartitionChange `json:"change,omitempty"`
	// Election and Reassign are the operators' commands (operations.go).
	Election *Election     `json:"election,omitempty"`
	Reassign *Reassignment `json:"reassign,omitempty"`
	// ACLs are the bindings of an ACL command (acls.go).
	ACLs []ACL `json:"acls,omitempty"`
	// Scram and Quotas alter the SCRAM users and the client quotas
	// (scram.go, quotas.go).
	Scram  *ScramAlteration  `json:"scram,omitempty"`
	Quotas []QuotaAlteration `json:"quotas,omitempty"`
}

const (
	opInitCluster      = "init-cluster"
	opRegisterBroker   = "register-broker"
	opCreateTopic      = "create-topic"
	opDeleteTopic      = "delete-topic"
	opCreatePartitions = "create-partitions"
	opSetTopicConfigs  = "set-topic-configs"
	opAllocateIDs      = "allocate-producer-ids"
	opSetBrokerConfigs = "set-broker-configs"
	opFenceBroker      = "fence-broker"
	opUnfenceBroker    = "unfence-broker"
	opAlterPartition   = "alter-partition"
)

// apply changes the state by one command. It validates again what the
// proposer checked, since the state may have changed between proposal and
// commit; a refused command changes nothing and returns its error.
func (s *state) apply(c *command) error {
	switch c.Op {
	case opInitCluster:
		if s.ClusterID == "" {
			s.ClusterID = c.ClusterID
		}
		return nil
	case opRegisterBroker:
		if c.Broker == nil {
			return errors.New("meta: register-broker without a broker")
		}
		// A registering broker is alive: it may lead again.
		b := *c.Broker
		b.Fenced = false
		old, known := s.Brokers[b.ID]
		s.Brokers[b.ID] = b
		if known && old.Incarnation != b.Incarnation {
			s.restarted(b.ID)
		}
		s.electLeaders()
		return nil
	case opAlterScram:
		return s.applyScram(c.Scram)
	case opAlterQuotas:
		return s.applyQuotas(c.Quotas)
	case opFenceBroker:
		return s.fence(c.BrokerID)
	case opUnfenceBroker:
		return s.unfence(c.BrokerID)
	case opAlterPartition:
		if c.Change == nil {
			return errors.New("meta: alter-partition without a change")
		}
		return s.applyAlterPartition(c.Change)
	case opCreateTopic:
		t := c.Topic
		if t == nil {
			return errors.New("meta: create-topic without a topic")
		}
		if err := ValidateTopicName(t.Name); err != nil {
			return err
		}
		if _, ok := s.Topics[t.Name]; ok {
			return fmt.Errorf("%w: %s", ErrTopicExists, t.Name)
		}
		for _, o := range s.Topics {
			if o.ID == t.ID {
				return fmt.Errorf("meta: topic id %s already in use", t.IDString())
			}
		}
		if err := checkPartitionLimits(s.Brokers, s.Topics, t.Name, t.Internal, t.Partitions); err != nil {
			return err
		}
		s.Topics[t.Name] = cloneTopic(t)
		return nil
	case opDeleteTopic:
		if _, ok := s.Topics[c.Name]; !ok {
			return fmt.Errorf("%w: %s", ErrUnknownTopic, c.Name)
		}
		delete(s.Topics, c.Name)
		return nil
	case opCreatePartitions:
		t, ok := s.Topics[c.Name]
		if !ok {
			return fmt.Errorf("%w: %s", ErrUnknownTopic, c.Name)
		}
		if int(c.Count) != len(t.Partitions)+len(c.Partitions) || len(c.Partitions) == 0 {
			return fmt.Errorf("%w: topic %s has %d partitions; partitions can only grow", ErrInvalidPartitions, c.Name, len(t.Partitions))
		}
		if err := checkPartitionLimits(s.Brokers, s.Topics, c.Name, t.Internal, c.Partitions); err != nil {
			return err
		}
		nt := cloneTopic(t)
		for i, p := range c.Partitions {
			p.Index = int32(len(t.Partitions) + i)
			nt.Partitions = append(nt.Partitions, clonePartition(p))
		}
		s.Topics[c.Name] = nt
		return nil
	case opAllocateIDs:
		// The proposer read NextProducerID and asks for the block after
		// it; a concurrent allocation got there first if it moved.
		if c.First != s.NextProducerID || c.IDs < 1 {
			return fmt.Errorf("%w: block at %d, next id is %d", errIDConflict, c.First, s.NextProducerID)
		}
		s.NextProducerID += c.IDs
		return nil
	case opSetTopicConfigs:
		t, ok := s.Topics[c.Name]
		if !ok {
			return fmt.Errorf("%w: %s", ErrUnknownTopic, c.Name)
		}
		if c.Conditional && !sameConfigs(t.Configs, c.IfConfigs) {
			return fmt.Errorf("%w: topic %s", errConfigConflict, c.Name)
		}
		nt := cloneTopic(t)
		nt.Configs = maps.Clone(c.Configs)
		s.Topics[c.Name] = nt
		s.electLeaders() // unclean.leader.election.enable may have changed
		return nil
	case opSetBrokerConfigs:
		if c.Conditional && !sameConfigs(s.BrokerConfigs[c.Name], c.IfConfigs) {
			return fmt.Errorf("%w: broker resource %q", errConfigConflict, c.Name)
		}
		bc := maps.Clone(s.BrokerConfigs)
		if bc == nil {
			bc = make(map[string]map[string]string)
		}
		if len(c.Configs) == 0 {
			delete(bc, c.Name)
		} else {
			bc[c.Name] = maps.Clone(c.Configs)
		}
		s.BrokerConfigs = bc
		s.electLeaders()
		return nil
	case opCreateACLs, opDeleteACLs:
		return s.applyACLs(c)
	}
	// The operators' commands: controlled shutdown, leader elections,
	// reassignments (operations.go).
	return s.applyOperation(c)
}

// view builds an immutable Cluster from the state. Topics are shared
// between views: apply replaces a changed topic rather than editing it.
func (s *state) view(index uint64, controller int32) *Cluster {
	cl := &Cluster{
		ClusterID:    s.ClusterID,
		ControllerID: controller,
		Brokers:      maps.Clone(s.Brokers),
		Topics:       maps.Clone(s.Topics),
		TopicsByID:   make(map[[16]byte]*Topic, len(s.Topics)),
		Index:        index,

		NextProducerID: s.NextProducerID,
		BrokerConfigs:  maps.Clone(s.BrokerConfigs),
		ACLs:           s.acls(),
		ScramUsers:     s.ScramUsers,
		Quotas:         s.Quotas,
	}
	for _, t := range s.Topics {
		cl.TopicsByID[t.ID] = t
	}
	return cl
}

// sameConfigs compares config sets, a nil set equal to an empty one.
func sameConfigs(a, b map[string]string) bool {
	return len(a) == len(b) && maps.Equal(a, b)
}

func cloneTopic(t *Topic) *Topic {
	nt := *t
	nt.Configs = maps.Clone(t.Configs)
	nt.Partitions = make([]Partition, len(t.Partitions))
	for i, p := range t.Partitions {
		nt.Partitions[i] = clonePartition(p)
	}
	return &nt
}

func clonePartition(p Partition) Partition {
	p.Replicas = slices.Clone(p.Replicas)
	p.ISR = slices.Clone(p.ISR)
	p.AddingReplicas = slices.Clone(p.AddingReplicas)
	p.RemovingReplicas = slices.Clone(p.RemovingReplicas)
	return p
}

// placeReplicas chooses replicas for count new partitions starting at index
// first among the live (unfenced) brokers: brokers in id order — or, when
// brokers name racks, alternating between racks, as Kafka's rack-aware
// placement does, so consecutive brokers are on different racks — and
// each partition's list is that order rotated by its index, so leadership
// and replicas spread evenly and a partition's replicas span as many racks
// as they can. A replication factor above the live brokers is refused.
func placeReplicas(brokers map[int32]Broker, first, count int32, rf int16) ([]Partition, error) {
	var ids []int32
	for _, id := range slices.Sorted(maps.Keys(brokers)) {
		if !brokers[id].Fenced {
			ids = append(ids, id)
		}
	}
	ids = rackAlternating(ids, brokers)
	if rf < 1 || int(rf) > len(ids) {
		return nil, fmt.Errorf("%w: %d, with %d live brokers", ErrInvalidReplicationFactor, rf, len(ids))
	}
	if count < 1 {
		return nil, fmt.Errorf("%w: partition count %d must be at least 1", ErrInvalidPartitions, count)
	}
	// Start at a random broker, as Kafka does, so single-partition
	// topics do not all lead on the lowest id. The proposer places; the
	// command carries the result, so applying stays deterministic.
	seed := rand.IntN(len(ids))
	out := make([]Partition, count)
	for i := range count {
		idx := first + i
		replicas := make([]int32, rf)
		for r := range int(rf) {
			replicas[r] = ids[(seed+int(idx)+r)%len(ids)]
		}
		out[i] = Partition{Index: idx, Leader: replicas[0], Replicas: replicas, ISR: slices.Clone(replicas)}
	}
	return out, nil
}

// manualReplicas checks an explicit assignment.
func manualReplicas(brokers map[int32]Broker, assignments [][]int32) ([]Partition, error) {
	out := make([]Partition, len(assignments))
	for i, replicas := range assignments {
		if len(replicas) == 0 {
			return nil, fmt.Errorf("%w: partition %d has no replicas", ErrInvalidReplicationFactor, i)
		}
		if len(replicas) != len(assignments[0]) {
			return nil, fmt.Errorf("%w: partitions have different replica counts", ErrInvalidReplicationFactor)
		}
		seen := make(map[int32]bool)
		for _, id := range replicas {
			if _, ok := brokers[id]; !ok {
				return nil, fmt.Errorf("%w: partition %d names unknown broker %d", ErrInvalidReplicationFactor, i, id)
			}
			if seen[id] {
				return nil, fmt.Errorf("%w: partition %d names broker %d twice", ErrInvalidReplicationFactor, i, id)
			}
			seen[id] = true
		}
		out[i] = Partition{Index: int32(i), Leader: replicas[0], Replicas: slices.Clone(replicas), ISR: slices.Clone(replicas)}
	}
	return out, nil
}

// rackAlternating orders broker ids (sorted) so racks alternate: the
// first broker of each rack (racks in name order), then the second of
// each, and so on. Without racks it returns ids unchanged.
func rackAlternating(ids []int32, brokers map[int32]Broker) []int32 {
	byRack := make(map[string][]int32)
	for _, id := range ids {
		r := brokers[id].Rack
		byRack[r] = append(byRack[r], id)
	}
	if len(byRack) < 2 {
		return ids
	}
	racks := slices.Sorted(maps.Keys(byRack))
	out := make([]int32, 0, len(ids))
	for i := 0; len(out) < len(ids); i++ {
		for _, r := range racks {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
			}
		}
	}
	return out
}
