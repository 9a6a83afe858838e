package topology

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Topology is a built, immutable processor graph cut into sub-topologies. It
// is safe for concurrent use: every task instantiates its own processors and
// stores from it.
type Topology struct {
	nodes       []*node
	byName      map[string]*node
	stores      map[string]*storeEntry
	storeOrder  []string
	repartition map[string]int
	subs        []*SubTopology
	global      *SubTopology // nil without global stores
	copart      [][]string   // groups of source topics (base names)
}

// SubTopology is a connected part of the graph: nodes linked by parent-child
// edges or by sharing a store. Sub-topologies exchange records only through
// topics (repartition topics, or user topics read back), so each runs as its
// own tasks, one per input partition.
type SubTopology struct {
	id      int
	nodes   []*node
	sources map[string]*node // topic (base name) -> source node
	stores  []string
	global  bool
}

// ID is the sub-topology's number, its position in Describe's output.
func (s *SubTopology) ID() int { return s.id }

// SourceTopics returns the topics the sub-topology reads, sorted, with
// repartition topics by base name.
func (s *SubTopology) SourceTopics() []string {
	ts := make([]string, 0, len(s.sources))
	for t := range s.sources {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// SinkTopics returns the topics the sub-topology's sinks write to by name,
// sorted and without duplicates, repartition topics by base name. Sinks
// choosing their topic per record (TopicFunc) are not in it.
func (s *SubTopology) SinkTopics() []string {
	var ts []string
	for _, n := range s.nodes {
		if n.kind == sinkNode && n.topic != "" {
			ts = append(ts, n.topic)
		}
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// Stores returns the names of the sub-topology's stores, in order of addition.
func (s *SubTopology) Stores() []string { return slices.Clone(s.stores) }

// Build checks the graph and cuts it into sub-topologies. It reports every
// problem found, joined, each wrapping ErrInvalidTopology.
func (b *Builder) Build() (*Topology, error) {
	errs := slices.Clone(b.errs)
	for _, n := range b.nodes {
		if n.kind == sourceNode && len(n.children) == 0 {
			errs = append(errs, fmt.Errorf("%w: source %q has no children", ErrInvalidTopology, n.name))
		}
	}
	for base := range b.repartition {
		read, written := false, false
		for _, n := range b.nodes {
			read = read || slices.Contains(n.topics, base)
			written = written || n.topic == base
		}
		if !read || !written {
			errs = append(errs, fmt.Errorf("%w: repartition topic %q must be both written and read", ErrInvalidTopology, base))
		}
	}
	for _, name := range b.storeOrder {
		if len(b.stores[name].processors) == 0 {
			errs = append(errs, fmt.Errorf("%w: store %q is connected to no processor", ErrInvalidTopology, name))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	t := &Topology{
		nodes:       b.nodes,
		byName:      b.byName,
		stores:      b.stores,
		storeOrder:  b.storeOrder,
		repartition: b.repartition,
	}
	t.cut()
	for _, g := range b.copart {
		var topics []string
		for _, src := range g {
			topics = append(topics, b.byName[src].topics...)
		}
		sort.Strings(topics)
		t.copart = append(t.copart, slices.Compact(topics))
	}
	// A store shared by global and non-global processors is read-only for
	// the latter; that is the only sharing allowed across sub-topologies.
	return t, nil
}

// cut computes the sub-topologies: connected components over parent-child
// edges and shared (non-global) stores, numbered by their first node.
func (t *Topology) cut() {
	parent := make([]int, len(t.nodes))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) {
		ra, rb := find(a), find(b)
		if ra < rb {
			parent[rb] = ra
		} else if rb < ra {
			parent[ra] = rb
		}
	}
	for _, n := range t.nodes {
		for _, c := range n.children {
			union(n.index, c.index)
		}
	}
	for _, name := range t.storeOrder {
		s := t.stores[name]
		var first *node
		for _, p := range s.processors {
			n := t.byName[p]
			if s.global && !n.global {
				continue // a reader of a global store
			}
			if first == nil {
				first = n
			} else {
				union(first.index, n.index)
			}
		}
	}
	byRoot := map[int]*SubTopology{}
	for _, n := range t.nodes {
		r := find(n.index)
		s := byRoot[r]
		if s == nil {
			s = &SubTopology{sources: map[string]*node{}, global: n.global}
			byRoot[r] = s
			if n.global {
				t.global = s
			} else {
				s.id = len(t.subs)
				t.subs = append(t.subs, s)
			}
		}
		s.nodes = append(s.nodes, n)
		for _, topic := range n.topics {
			s.sources[topic] = n
		}
		for _, st := range n.stores {
			if t.stores[st].global && !n.global {
				continue
			}
			if !slices.Contains(s.stores, st) {
				s.stores = append(s.stores, st)
			}
		}
	}
	if t.global != nil {
		t.global.id = len(t.subs)
	}
}

// SubTopologies returns the sub-topologies that run as tasks, by ID.
func (t *Topology) SubTopologies() []*SubTopology { return slices.Clone(t.subs) }

// Global returns the sub-topology that maintains global stores, or nil. It
// runs as one GlobalTask per instance reading every partition of its topics.
func (t *Topology) Global() *SubTopology { return t.global }

// Store returns the spec of the named store.
func (t *Topology) Store(name string) (StoreSpec, bool) {
	s, ok := t.stores[name]
	if !ok {
		return StoreSpec{}, false
	}
	return s.spec, true
}

// StoreNames returns the names of all stores, in order of addition.
func (t *Topology) StoreNames() []string { return slices.Clone(t.storeOrder) }

// IsGlobalStore reports whether the named store is a global store.
func (t *Topology) IsGlobalStore(name string) bool {
	s, ok := t.stores[name]
	return ok && s.global
}

// IsRepartitionTopic reports whether topic is the base name of an internal
// repartition topic.
func (t *Topology) IsRepartitionTopic(topic string) bool {
	_, ok := t.repartition[topic]
	return ok
}

// TopicName resolves a topic named in the graph to its name on the broker:
// repartition topics get the application id prefix, user topics are unchanged.
func (t *Topology) TopicName(app, topic string) string {
	if t.IsRepartitionTopic(topic) {
		return RepartitionTopic(app, topic)
	}
	return topic
}

// CopartitionGroups returns the groups of source topics (repartition topics by
// base name) that must be co-partitioned, each sorted.
func (t *Topology) CopartitionGroups() [][]string {
	out := make([][]string, len(t.copart))
	for i, g := range t.copart {
		out[i] = slices.Clone(g)
	}
	return out
}

// InternalTopicKind says what an internal topic is for.
type InternalTopicKind int

const (
	// Repartition topics carry records between sub-topologies
	// (cleanup.policy=delete, purged once consumed).
	Repartition InternalTopicKind = iota
	// Changelog topics back state stores (cleanup.policy=compact).
	Changelog
)

func (k InternalTopicKind) String() string {
	if k == Changelog {
		return "changelog"
	}
	return "repartition"
}

// InternalTopic is a topic the application creates and owns.
type InternalTopic struct {
	Name        string // full name, prefixed with the application id
	Kind        InternalTopicKind
	SubTopology int // the sub-topology that reads it (repartition) or owns its store (changelog)
	Partitions  int
}

// ErrCopartition is wrapped by ResolvePartitions when co-partitioned topics
// have different partition counts.
var ErrCopartition = errors.New("topology: topics are not co-partitioned")

// Partitions is the outcome of ResolvePartitions.
type Partitions struct {
	// Topics maps every source and internal topic (full names) to its
	// partition count.
	Topics map[string]int
	// Tasks maps each sub-topology ID to its number of tasks: the largest
	// partition count among its source topics.
	Tasks []int
	// Internal lists the internal topics to create, sorted by name.
	Internal []InternalTopic
}

// ResolvePartitions works out partition counts for application app given those
// of the user topics it reads (external reports them). Repartition topics
// without an explicit count take the largest count among the source topics of
// the sub-topology writing them; co-partitioned groups must agree, with
// inherited repartition counts raised to the group's. Changelog topics get one
// partition per task of their sub-topology.
func (t *Topology) ResolvePartitions(app string, external func(topic string) (int, bool)) (Partitions, error) {
	counts := map[string]int{} // by base name
	var errs []error
	for _, s := range append(slices.Clone(t.subs), t.global) {
		if s == nil {
			continue
		}
		for topic := range s.sources {
			if t.IsRepartitionTopic(topic) {
				continue
			}
			n, ok := external(topic)
			if !ok || n <= 0 {
				errs = append(errs, fmt.Errorf("topology: source topic %q does not exist", topic))
				continue
			}
			counts[topic] = n
		}
	}
	if len(errs) > 0 {
		return Partitions{}, errors.Join(errs...)
	}
	for base, n := range t.repartition {
		if n > 0 {
			counts[base] = n
		}
	}
	// Inherit until nothing changes (repartition topics may feed each other).
	for range len(t.repartition) + 1 {
		changed := false
		for base, explicit := range t.repartition {
			if explicit > 0 {
				continue
			}
			writer := t.writerOf(base)
			if writer == nil {
				continue
			}
			best := 0
			for topic := range writer.sources {
				best = max(best, counts[topic])
			}
			if best > counts[base] {
				counts[base] = best
				changed = true
			}
		}
		for _, g := range t.copart {
			want := 0
			for _, topic := range g {
				if !t.IsRepartitionTopic(topic) || t.repartition[topic] > 0 {
					if want != 0 && counts[topic] != want {
						return Partitions{}, fmt.Errorf("%w: %v have %v partitions", ErrCopartition, g, countsOf(g, counts))
					}
					want = counts[topic]
				}
			}
			if want == 0 {
				for _, topic := range g {
					want = max(want, counts[topic])
				}
			}
			for _, topic := range g {
				if counts[topic] != want {
					counts[topic] = want
					changed = true
				}
			}
		}
		if !changed {
			break
		}
	}
	p := Partitions{Topics: map[string]int{}, Tasks: make([]int, len(t.subs))}
	for base, n := range counts {
		p.Topics[t.TopicName(app, base)] = n
	}
	for _, s := range t.subs {
		for topic := range s.sources {
			p.Tasks[s.id] = max(p.Tasks[s.id], counts[topic])
		}
		for _, st := range s.stores {
			if t.stores[st].spec.Logging {
				name := ChangelogTopic(app, st)
				p.Topics[name] = p.Tasks[s.id]
				p.Internal = append(p.Internal, InternalTopic{Name: name, Kind: Changelog, SubTopology: s.id, Partitions: p.Tasks[s.id]})
			}
		}
		for topic := range s.sources {
			if t.IsRepartitionTopic(topic) {
				p.Internal = append(p.Internal, InternalTopic{Name: t.TopicName(app, topic), Kind: Repartition, SubTopology: s.id, Partitions: counts[topic]})
			}
		}
	}
	sort.Slice(p.Internal, func(i, j int) bool { return p.Internal[i].Name < p.Internal[j].Name })
	return p, nil
}

func countsOf(g []string, counts map[string]int) []int {
	out := make([]int, len(g))
	for i, t := range g {
		out[i] = counts[t]
	}
	return out
}

// writerOf returns the sub-topology with a sink writing topic.
func (t *Topology) writerOf(topic string) *SubTopology {
	for _, s := range t.subs {
		for _, n := range s.nodes {
			if n.kind == sinkNode && n.topic == topic {
				return s
			}
		}
	}
	return nil
}

// Describe prints the topology in the layout of Kafka Streams'
// TopologyDescription: each sub-topology with its sources (and topics),
// processors (and stores) and sinks (and topic), with "-->" naming a node's
// children and "<--" its parents.
func (t *Topology) Describe() string {
	var sb strings.Builder
	sb.WriteString("Topologies:\n")
	for _, s := range t.subs {
		fmt.Fprintf(&sb, "   Sub-topology: %d\n", s.id)
		describeNodes(&sb, s)
	}
	if t.global != nil {
		fmt.Fprintf(&sb, "   Sub-topology: %d for global store (will not generate tasks)\n", t.global.id)
		describeNodes(&sb, t.global)
	}
	if len(t.copart) > 0 {
		sb.WriteString("   Co-partitioned topics:\n")
		for _, g := range t.copart {
			fmt.Fprintf(&sb, "    [%s]\n", strings.Join(g, ", "))
		}
	}
	return sb.String()
}

func describeNodes(sb *strings.Builder, s *SubTopology) {
	for _, n := range s.nodes {
		switch n.kind {
		case sourceNode:
			fmt.Fprintf(sb, "    Source: %s (topics: [%s])\n", n.name, strings.Join(n.topics, ", "))
		case processorNode:
			fmt.Fprintf(sb, "    Processor: %s (stores: [%s])\n", n.name, strings.Join(n.stores, ", "))
		case sinkNode:
			topic := n.topic
			if n.topicFunc != nil {
				topic = "<chosen per record>"
			}
			fmt.Fprintf(sb, "    Sink: %s (topic: %s)\n", n.name, topic)
		}
		if n.kind != sinkNode {
			fmt.Fprintf(sb, "      --> %s\n", names(n.children))
		}
		if n.kind != sourceNode {
			fmt.Fprintf(sb, "      <-- %s\n", names(n.parents))
		}
	}
}

func names(ns []*node) string {
	if len(ns) == 0 {
		return "none"
	}
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.name
	}
	return strings.Join(out, ", ")
}
