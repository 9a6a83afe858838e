package runnel

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Instance is one running instance of the application, as its consumer
// group describes it (Kafka Streams' StreamsMetadata).
type Instance struct {
	// Endpoint is the instance's ApplicationServer (host:port); empty if
	// it set none.
	Endpoint string
	// Process is the instance's id (one per state directory).
	Process string
	// Local reports whether the instance is the App asked.
	Local bool
	// Partitions are the source partitions of the tasks it runs as
	// active, by topic.
	Partitions map[string][]int32
	// Stores names the stores of those tasks, sorted.
	Stores []string
}

// KeyLocation says where a key's state lives (Kafka Streams'
// KeyQueryMetadata).
type KeyLocation struct {
	// Instance runs the key's task as active: query its store there.
	Instance
	// Partition is the key's partition of the store's source topics: the
	// partition of the task holding the key.
	Partition int32
	// Standbys are the instances keeping a standby copy of the key's task
	// (see StandbyReplicas), sorted by endpoint then process; never the
	// active's. A StaleStores view there reads the key's state, possibly
	// behind the active's (Kafka Streams' KeyQueryMetadata.standbyHosts).
	Standbys []Instance
}

// Instances describes every instance of the application that is a member
// of its group (Kafka Streams' metadataForAllStreamsClients), sorted by
// endpoint then process. It fails with ErrStoreUnavailable while the group
// is rebalancing or the App is not running.
func (a *App) Instances(ctx context.Context) ([]Instance, error) {
	group, process, err := a.describeGroup(ctx)
	if err != nil {
		return nil, err
	}
	byProcess := map[string]*Instance{}
	for _, m := range group.Members {
		in, err := a.memberInstance(m, process)
		if err != nil {
			return nil, err
		}
		if have, ok := byProcess[in.Process]; ok {
			// Two members of one process: its workers.
			for t, ps := range in.Partitions {
				have.Partitions[t] = append(have.Partitions[t], ps...)
				slices.Sort(have.Partitions[t])
			}
			have.Stores = slices.Compact(slices.Sorted(slices.Values(append(have.Stores, in.Stores...))))
			continue
		}
		byProcess[in.Process] = &in
	}
	out := make([]Instance, 0, len(byProcess))
	for _, in := range byProcess {
		out = append(out, *in)
	}
	sortInstances(out)
	return out, nil
}

// KeyInstance says which instance runs the task holding key in the store
// named store (Kafka Streams' queryMetadataForKey). key is the key as the
// store's key serde encodes it. The key's partition is the one Kafka's
// default partitioner (murmur2) gives it in the store's source topics, as
// the runtime partitions repartition topics and keyed producers do input
// topics. It fails with ErrUnknownStore for an unknown store and with
// ErrStoreUnavailable while the group is rebalancing, the partition has
// no owner, or the App is not running.
func (a *App) KeyInstance(ctx context.Context, store string, key []byte) (KeyLocation, error) {
	sq, err := newStoreQuery(a, store, anyKind)
	if err != nil {
		return KeyLocation{}, err
	}
	var topics []string
	for _, s := range a.topo.SubTopologies() {
		if s.ID() == sq.sub {
			for _, t := range s.SourceTopics() {
				topics = append(topics, a.topo.TopicName(a.opts.ApplicationID, t))
			}
		}
	}
	adm, _, err := a.queries.admin(store)
	if err != nil {
		return KeyLocation{}, err
	}
	details, err := adm.ListTopics(ctx, topics[0])
	if err != nil {
		return KeyLocation{}, fmt.Errorf("stream: key instance: %w", err)
	}
	d, ok := details[topics[0]]
	if !ok || d.Err != nil || len(d.Partitions) == 0 {
		return KeyLocation{}, fmt.Errorf("stream: key instance: topic %s: %v", topics[0], d.Err)
	}
	if key == nil {
		key = []byte{} // a nil key would be spread at random
	}
	part := int32(kgo.StickyKeyPartitioner(nil).ForTopic(topics[0]).Partition(&kgo.Record{Key: key}, len(d.Partitions)))

	group, process, err := a.describeGroup(ctx)
	if err != nil {
		return KeyLocation{}, err
	}
	task := taskKey{sq.sub, part}.String()
	var loc KeyLocation
	found := false
	standbys := map[string]Instance{} // by process: an instance's workers are members each
	for _, m := range group.Members {
		in, err := a.memberInstance(m, process)
		if err != nil {
			return KeyLocation{}, err
		}
		if !found {
			for _, t := range topics {
				if slices.Contains(in.Partitions[t], part) {
					loc, found = KeyLocation{Instance: in, Partition: part}, true
					break
				}
			}
		}
		held, err := memberStandbys(m)
		if err != nil {
			return KeyLocation{}, err
		}
		if slices.Contains(held, task) {
			standbys[in.Process] = in
		}
	}
	if !found {
		return KeyLocation{}, fmt.Errorf("%w: store %q: no instance runs partition %d of %s", ErrStoreUnavailable, store, part, topics[0])
	}
	delete(standbys, loc.Process) // the balancer never puts one there; a stale assignment might
	for _, in := range standbys {
		loc.Standbys = append(loc.Standbys, in)
	}
	sortInstances(loc.Standbys)
	return loc, nil
}

// memberStandbys returns the standby task ids the group leader gave member
// m, from its assignment's UserData.
func memberStandbys(m kadm.DescribedGroupMember) ([]string, error) {
	assigned, ok := m.Assigned.AsConsumer()
	if !ok {
		return nil, nil
	}
	info, err := decodeAssignmentInfo(assigned.UserData)
	if err != nil {
		return nil, fmt.Errorf("stream: group member %s: %w", m.MemberID, err)
	}
	return info.Standbys, nil
}

func sortInstances(ins []Instance) {
	slices.SortFunc(ins, func(a, b Instance) int {
		if c := strings.Compare(a.Endpoint, b.Endpoint); c != 0 {
			return c
		}
		return strings.Compare(a.Process, b.Process)
	})
}

// admin returns the runner's admin client and this instance's process id.
func (q *queryState) admin(store string) (*kadm.Client, string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.adm == nil {
		return nil, "", fmt.Errorf("%w: store %q: the application is not running", ErrStoreUnavailable, store)
	}
	return q.adm, q.process, nil
}

// describeGroup describes the application's group once it is stable.
func (a *App) describeGroup(ctx context.Context) (kadm.DescribedGroup, string, error) {
	adm, process, err := a.queries.admin("")
	if err != nil {
		return kadm.DescribedGroup{}, "", fmt.Errorf("%w: the application is not running", ErrStoreUnavailable)
	}
	groups, err := adm.DescribeGroups(ctx, a.opts.ApplicationID)
	if err != nil {
		return kadm.DescribedGroup{}, "", fmt.Errorf("stream: describe group: %w", err)
	}
	g, err := groups.On(a.opts.ApplicationID, nil)
	if err == nil {
		err = g.Err
	}
	if err != nil {
		return kadm.DescribedGroup{}, "", fmt.Errorf("stream: describe group: %w", err)
	}
	if g.State != "Stable" {
		return kadm.DescribedGroup{}, "", fmt.Errorf("%w: group %s is %s", ErrStoreUnavailable, g.Group, g.State)
	}
	return g, process, nil
}

// memberInstance reads what a member says of itself and what it was
// assigned.
func (a *App) memberInstance(m kadm.DescribedGroupMember, localProcess string) (Instance, error) {
	meta, ok := m.Join.AsConsumer()
	if !ok {
		return Instance{}, fmt.Errorf("stream: group member %s is no consumer", m.MemberID)
	}
	info, err := decodeMemberInfo(meta.UserData)
	if err != nil {
		return Instance{}, fmt.Errorf("stream: group member %s: %w", m.MemberID, err)
	}
	in := Instance{Endpoint: info.Endpoint, Process: info.Process, Local: info.Process == localProcess, Partitions: map[string][]int32{}}
	assigned, ok := m.Assigned.AsConsumer()
	if !ok {
		return in, nil
	}
	stores := map[string]bool{}
	routes := map[string][]int{}
	for _, s := range a.topo.SubTopologies() {
		for _, t := range s.SourceTopics() {
			full := a.topo.TopicName(a.opts.ApplicationID, t)
			routes[full] = append(routes[full], s.ID())
		}
	}
	for _, t := range assigned.Topics {
		in.Partitions[t.Topic] = slices.Sorted(slices.Values(t.Partitions))
		if len(t.Partitions) == 0 {
			continue
		}
		for _, sub := range routes[t.Topic] {
			for _, name := range storesOf(a.topo, sub) {
				stores[name] = true
			}
		}
	}
	in.Stores = slices.Sorted(maps.Keys(stores))
	return in, nil
}
