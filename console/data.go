package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Overview is the cluster at a glance (GET /api/overview).
type Overview struct {
	ClusterID  string   `json:"clusterId"`
	Controller int32    `json:"controller"`
	Brokers    []Broker `json:"brokers"`
	// BrokersAlive counts the Brokers that are alive.
	BrokersAlive int    `json:"brokersAlive"`
	Topics       int    `json:"topics"`
	Partitions   Health `json:"partitions"`
	// Records is the sum of every partition's end offset: the records
	// ever written, whose rate the overview charts.
	Records int64 `json:"records"`
}

// Broker is one broker of the cluster.
type Broker struct {
	NodeID int32  `json:"nodeId"`
	Host   string `json:"host"`
	Port   int32  `json:"port"`
	Rack   string `json:"rack,omitempty"`
	// Alive is false for a broker the cluster knows but does not serve
	// from: registered but fenced (stopped, or its heartbeats lost), or
	// named as a partition's replica without being registered at all.
	Alive bool `json:"alive"`
	// Leader is the partitions this broker leads.
	Leader int `json:"leader"`
	// Replicas is the partition replicas placed on this broker.
	Replicas int `json:"replicas"`
	// DiskBytes is the size of the logs the broker holds, as of the
	// console's last sample (DescribeLogDirs); -1 when unknown.
	DiskBytes int64 `json:"diskBytes"`
}

// Health counts partitions by state: online has a leader, under-replicated
// has fewer in-sync replicas than replicas, offline has no leader.
type Health struct {
	Total           int `json:"total"`
	Online          int `json:"online"`
	UnderReplicated int `json:"underReplicated"`
	Offline         int `json:"offline"`
}

func (h *Health) add(p kadm.PartitionDetail) {
	h.Total++
	if p.Leader < 0 {
		h.Offline++
	} else {
		h.Online++
	}
	if len(p.ISR) < len(p.Replicas) {
		h.UnderReplicated++
	}
}

func (c *Console) overview(ctx context.Context, _ *http.Request) (any, error) {
	md, err := c.adm.Metadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("console: metadata: %w", err)
	}
	ov := Overview{ClusterID: md.Cluster, Controller: md.Controller, Topics: len(md.Topics)}
	brokerSize, _ := c.smp.sizes()
	addBroker := func(b kadm.BrokerDetail, alive bool) {
		br := Broker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, DiskBytes: -1, Alive: alive}
		if n, ok := brokerSize[b.NodeID]; ok {
			br.DiskBytes = n
		}
		if b.Rack != nil {
			br.Rack = *b.Rack
		}
		ov.Brokers = append(ov.Brokers, br)
	}
	for _, b := range md.Brokers {
		addBroker(b, true)
	}
	// Metadata lists the live brokers only; the fenced ones come from
	// DescribeCluster v2 (Kafka 4.0, KIP-1073), and a broker no longer
	// registered from the replica lists below.
	known := func(id int32) bool {
		return slices.ContainsFunc(ov.Brokers, func(b Broker) bool { return b.NodeID == id })
	}
	for _, b := range c.fencedBrokers(ctx) {
		if !known(b.NodeID) {
			addBroker(b, false)
		}
	}
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			for _, r := range p.Replicas {
				if !known(r) {
					addBroker(kadm.BrokerDetail{NodeID: r}, false)
				}
			}
		}
	}
	slices.SortFunc(ov.Brokers, func(a, b Broker) int { return cmp.Compare(a.NodeID, b.NodeID) })
	ov.BrokersAlive = len(md.Brokers)
	byID := map[int32]*Broker{}
	for i := range ov.Brokers {
		byID[ov.Brokers[i].NodeID] = &ov.Brokers[i]
	}
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			ov.Partitions.add(p)
			if b := byID[p.Leader]; b != nil {
				b.Leader++
			}
			for _, r := range p.Replicas {
				if b := byID[r]; b != nil {
					b.Replicas++
				}
			}
		}
	}
	if len(md.Topics) > 0 {
		ends, err := c.adm.ListEndOffsets(ctx, md.Topics.Names()...)
		if err := partialOK(err); err != nil {
			return nil, fmt.Errorf("console: end offsets: %w", err)
		}
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err == nil {
				ov.Records += o.Offset
			}
		})
	}
	return ov, nil
}

// partialOK drops the error of a request that some brokers answered: while
// a broker is down (when the console matters most) a page shows what the
// others said, its partitions' offsets left unknown, rather than nothing.
func partialOK(err error) error {
	if se, ok := errors.AsType[*kadm.ShardErrors](err); ok && !se.AllFailed {
		return nil
	}
	return err
}

// fencedBrokers returns the brokers the cluster has registered but fenced,
// or none when it cannot tell (a cluster older than DescribeCluster v2
// answers without them).
func (c *Console) fencedBrokers(ctx context.Context) []kadm.BrokerDetail {
	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeFencedBrokers = true
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil || resp.ErrorCode != 0 {
		return nil
	}
	var out []kadm.BrokerDetail
	for _, b := range resp.Brokers {
		if b.IsFenced {
			out = append(out, kadm.BrokerDetail{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
		}
	}
	return out
}

// TopicSummary is one line of the topic list (GET /api/topics).
type TopicSummary struct {
	Name              string `json:"name"`
	Internal          bool   `json:"internal"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replicationFactor"`
	Health            Health `json:"health"`
	// Records is the records the topic holds: the sum over its
	// partitions of end offset minus start offset (with transaction
	// markers and compacted-away records counted).
	Records int64 `json:"records"`
	// Size is the bytes of the topic's logs, one copy (its leaders'), as
	// of the console's last sample; -1 when unknown.
	Size int64 `json:"size"`
	// RecordsPerSec is the rate records were appended at between the
	// console's last two samples; -1 when unknown.
	RecordsPerSec float64 `json:"recordsPerSec"`
	CleanupPolicy string  `json:"cleanupPolicy"`
	RetentionMs   string  `json:"retentionMs"`
	Error         string  `json:"error,omitempty"`
}

func (c *Console) topics(ctx context.Context, _ *http.Request) (any, error) {
	md, err := c.adm.Metadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("console: metadata: %w", err)
	}
	names := md.Topics.Names()
	out := make([]TopicSummary, 0, len(names))
	if len(names) == 0 {
		return out, nil
	}
	starts, err := c.adm.ListStartOffsets(ctx, names...)
	if err := partialOK(err); err != nil {
		return nil, fmt.Errorf("console: start offsets: %w", err)
	}
	ends, err := c.adm.ListEndOffsets(ctx, names...)
	if err := partialOK(err); err != nil {
		return nil, fmt.Errorf("console: end offsets: %w", err)
	}
	// One DescribeConfigs for every topic; a failure leaves the columns
	// empty rather than the page.
	cfgs, _ := c.adm.DescribeTopicConfigs(ctx, names...)
	_, sizes := c.smp.sizes()
	for _, name := range names {
		t := md.Topics[name]
		s := TopicSummary{Name: name, Internal: t.IsInternal, Partitions: len(t.Partitions), Size: -1}
		if n, ok := sizes[name]; ok {
			s.Size = n
		}
		s.RecordsPerSec = -1
		if r, ok := c.smp.latest("topic/"+name, "recordsPerSec"); ok {
			s.RecordsPerSec = r
		}
		if t.Err != nil {
			s.Error = t.Err.Error()
		}
		for _, p := range t.Partitions {
			s.Health.add(p)
			s.ReplicationFactor = max(s.ReplicationFactor, len(p.Replicas))
			st, ok1 := starts.Lookup(name, p.Partition)
			en, ok2 := ends.Lookup(name, p.Partition)
			if ok1 && ok2 && st.Err == nil && en.Err == nil {
				s.Records += en.Offset - st.Offset
			}
		}
		if rc, err := cfgs.On(name, nil); err == nil {
			for _, kv := range rc.Configs {
				switch kv.Key {
				case "cleanup.policy":
					s.CleanupPolicy = kv.MaybeValue()
				case "retention.ms":
					s.RetentionMs = kv.MaybeValue()
				}
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b TopicSummary) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Topic is one topic's page (GET /api/topics/{topic}).
type Topic struct {
	Name       string         `json:"name"`
	Internal   bool           `json:"internal"`
	Partitions []Partition    `json:"partitions"`
	Health     Health         `json:"health"`
	Configs    []ConfigEntry  `json:"configs"`
	Writes     bool           `json:"writesAllowed"`
	Browse     *BrowseRequest `json:"-"` // the page's browser form
}

// Partition is one partition of a topic.
type Partition struct {
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leaderEpoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	Offline     []int32 `json:"offlineReplicas,omitempty"`
	StartOffset int64   `json:"startOffset"`
	EndOffset   int64   `json:"endOffset"`
	Error       string  `json:"error,omitempty"`
}

// ConfigEntry is one topic config and where its value comes from.
type ConfigEntry struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Source    string `json:"source"`
	Sensitive bool   `json:"sensitive,omitempty"`
}

func (c *Console) topic(ctx context.Context, r *http.Request) (any, error) {
	name := r.PathValue("topic")
	md, err := c.adm.Metadata(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("console: metadata: %w", err)
	}
	t, ok := md.Topics[name]
	if !ok || errors.Is(t.Err, kerr.UnknownTopicOrPartition) || errors.Is(t.Err, kerr.InvalidTopicException) {
		return nil, notFound("console: no topic %q", name)
	}
	if t.Err != nil {
		return nil, fmt.Errorf("console: topic %q: %w", name, t.Err)
	}
	starts, err := c.adm.ListStartOffsets(ctx, name)
	if err := partialOK(err); err != nil {
		return nil, fmt.Errorf("console: start offsets: %w", err)
	}
	ends, err := c.adm.ListEndOffsets(ctx, name)
	if err := partialOK(err); err != nil {
		return nil, fmt.Errorf("console: end offsets: %w", err)
	}
	out := Topic{Name: name, Internal: t.IsInternal, Writes: c.cfg.AllowWrites}
	for _, p := range t.Partitions.Sorted() {
		out.Health.add(p)
		pp := Partition{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: p.Replicas, ISR: p.ISR, Offline: p.OfflineReplicas, StartOffset: -1, EndOffset: -1}
		if p.Err != nil {
			pp.Error = p.Err.Error()
		}
		if o, ok := starts.Lookup(name, p.Partition); ok && o.Err == nil {
			pp.StartOffset = o.Offset
		}
		if o, ok := ends.Lookup(name, p.Partition); ok && o.Err == nil {
			pp.EndOffset = o.Offset
		}
		out.Partitions = append(out.Partitions, pp)
	}
	cfgs, err := c.adm.DescribeTopicConfigs(ctx, name)
	if err == nil {
		if rc, err := cfgs.On(name, nil); err == nil {
			for _, kv := range rc.Configs {
				out.Configs = append(out.Configs, ConfigEntry{Name: kv.Key, Value: kv.MaybeValue(),
					Source: configSource(kv.Source.String()), Sensitive: kv.Sensitive})
			}
		}
	}
	slices.SortFunc(out.Configs, func(a, b ConfigEntry) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// configSource shortens kmsg's source names ("DYNAMIC_TOPIC_CONFIG").
func configSource(s string) string {
	switch s {
	case "DYNAMIC_TOPIC_CONFIG":
		return "topic"
	case "DEFAULT_CONFIG":
		return "default"
	case "STATIC_BROKER_CONFIG", "DYNAMIC_BROKER_CONFIG", "DYNAMIC_DEFAULT_BROKER_CONFIG":
		return "broker"
	}
	return s
}

// GroupSummary is one line of the group list (GET /api/groups).
type GroupSummary struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocolType"`
	Protocol     string `json:"protocol"`
	Members      int    `json:"members"`
	// Lag is the group's total lag over the partitions it has
	// committed offsets for; -1 when unknown.
	Lag   int64  `json:"lag"`
	Error string `json:"error,omitempty"`
}

func (c *Console) groups(ctx context.Context, _ *http.Request) (any, error) {
	listed, err := c.adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("console: list groups: %w", err)
	}
	out := []GroupSummary{}
	if len(listed) == 0 {
		return out, nil
	}
	lags, err := c.adm.Lag(ctx, listed.Groups()...)
	if err != nil {
		return nil, fmt.Errorf("console: group lag: %w", err)
	}
	for _, g := range lags.Sorted() {
		s := GroupSummary{Group: g.Group, State: g.State, ProtocolType: g.ProtocolType,
			Protocol: g.Protocol, Members: len(g.Members), Lag: totalLag(g.Lag)}
		if err := g.Error(); err != nil {
			s.Error = err.Error()
		}
		out = append(out, s)
	}
	return out, nil
}

func totalLag(l kadm.GroupLag) int64 {
	var sum int64
	for _, ps := range l {
		for _, p := range ps {
			if p.Lag < 0 {
				return -1
			}
			sum += p.Lag
		}
	}
	return sum
}

// Group is one consumer group's page (GET /api/groups/{group}).
type Group struct {
	GroupSummary
	Coordinator int32          `json:"coordinator"`
	MemberList  []Member       `json:"memberList"`
	Offsets     []PartitionLag `json:"offsets"`
	Writes      bool           `json:"writesAllowed"`
}

// Member is one member of a group and what it was assigned.
type Member struct {
	MemberID   string           `json:"memberId"`
	InstanceID string           `json:"instanceId,omitempty"`
	ClientID   string           `json:"clientId"`
	ClientHost string           `json:"clientHost"`
	Assigned   []TopicPartition `json:"assigned"`
}

// TopicPartition is a topic and some of its partitions.
type TopicPartition struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// PartitionLag is a group's position in one partition.
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
	Member    string `json:"member,omitempty"`
	Error     string `json:"error,omitempty"`
}

func (c *Console) group(ctx context.Context, r *http.Request) (any, error) {
	name := r.PathValue("group")
	lags, err := c.adm.Lag(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("console: group lag: %w", err)
	}
	g, ok := lags[name]
	// Kafka answers Dead for a group it does not know, newer versions
	// with GROUP_ID_NOT_FOUND.
	if !ok || g.State == "Dead" || errors.Is(g.DescribeErr, kerr.GroupIDNotFound) {
		return nil, notFound("console: no group %q", name)
	}
	out := Group{GroupSummary: GroupSummary{Group: name, State: g.State, ProtocolType: g.ProtocolType,
		Protocol: g.Protocol, Members: len(g.Members), Lag: totalLag(g.Lag)},
		Coordinator: g.Coordinator.NodeID, Writes: c.cfg.AllowWrites}
	if err := g.Error(); err != nil {
		out.Error = err.Error()
	}
	for _, m := range g.Members {
		mm := Member{MemberID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost}
		if m.InstanceID != nil {
			mm.InstanceID = *m.InstanceID
		}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				mm.Assigned = append(mm.Assigned, TopicPartition{Topic: t.Topic, Partitions: slices.Sorted(slices.Values(t.Partitions))})
			}
		}
		out.MemberList = append(out.MemberList, mm)
	}
	for _, l := range g.Lag.Sorted() {
		pl := PartitionLag{Topic: l.Topic, Partition: l.Partition, Committed: l.Commit.At, End: l.End.Offset, Lag: l.Lag}
		if l.Member != nil {
			pl.Member = l.Member.MemberID
		}
		if l.Err != nil {
			pl.Error = l.Err.Error()
		}
		out.Offsets = append(out.Offsets, pl)
	}
	return out, nil
}
