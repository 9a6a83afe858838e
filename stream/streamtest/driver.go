// Package streamtest runs a topology in memory, with no broker: a test pipes
// records into source topics, advances wall-clock time, and reads output
// topics and stores. It is deterministic: the same inputs give the same
// outputs, always.
//
// Every task of every sub-topology runs on the caller's goroutine. Records
// written to repartition topics (and to topics the topology reads back) are
// routed by key hash (murmur2, as the Java client does) to the partition's
// task and processed, breadth first, before Pipe returns. Stores are the
// in-memory ones of package state/memstore; with Caching on (the default,
// as in runnel.App), a record cache sits in front of them and updates reach
// downstream only on Commit.
//
// Scripts (see RunScript) drive a driver from a text file for behaviour that
// is a sequence.
package streamtest

import (
	"bytes"
	"fmt"
	"slices"
	"sort"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/memstore"
	"github.com/runnel-dev/runnel/topology"
)

// Option configures a Driver.
type Option func(*config)

type config struct {
	app         string
	partitions  map[string]int
	defParts    int
	caching     bool
	commitEvery int
	start       int64
}

// ApplicationID sets the application id (default "app").
func ApplicationID(id string) Option { return func(c *config) { c.app = id } }

// Partitions sets the partition count of a source topic (default: see
// DefaultPartitions).
func Partitions(topic string, n int) Option { return func(c *config) { c.partitions[topic] = n } }

// DefaultPartitions sets the partition count of source topics not set with
// Partitions (default 1).
func DefaultPartitions(n int) Option { return func(c *config) { c.defParts = n } }

// Caching puts record caches in front of the stores that ask for one, of
// topology.DefaultCacheBytes per task, as runnel.App does by default: an
// aggregation's updates reach downstream on Commit (or CommitEvery), once
// per key, and a test sees what production does. Default on. Off, every
// update is forwarded at once (runnel.App with CacheBytes(0), or the
// operation's WithoutCaching).
func Caching(on bool) Option { return func(c *config) { c.caching = on } }

// CommitEvery commits (flushes caches) after every n piped records; 0 (the
// default) commits only when Commit is called.
func CommitEvery(n int) Option { return func(c *config) { c.commitEvery = n } }

// StartTime sets the initial wall-clock time in ms (default 0).
func StartTime(ms int64) Option { return func(c *config) { c.start = ms } }

// Record is a record read from an output topic.
type Record struct {
	Topic     string
	Partition int32
	Key       []byte
	Value     []byte
	Timestamp int64
	Headers   topology.Headers
}

// Driver runs a topology in memory. It is not safe for concurrent use.
type Driver struct {
	topo   *topology.Topology
	cfg    config
	parts  topology.Partitions
	tasks  []*topology.Task
	byID   map[topology.TaskID]*topology.Task
	global *topology.Task
	// routes maps a topic (full name) the topology reads to its readers.
	routes    map[string][]int // sub-topology ids
	globalIn  map[string]bool
	out       map[string][]Record
	offsets   map[string]int64 // "topic/partition" -> next offset
	queue     []topology.InputRecord
	rr        int32 // round-robin partition for null keys
	wall      int64
	piped     int
	changelog map[string]int // records per changelog topic
	err       error
}

// New builds a driver for t.
func New(t *topology.Topology, opts ...Option) (*Driver, error) {
	cfg := config{app: "app", partitions: map[string]int{}, defParts: 1, caching: true}
	for _, o := range opts {
		o(&cfg)
	}
	d := &Driver{
		topo: t, cfg: cfg, byID: map[topology.TaskID]*topology.Task{}, routes: map[string][]int{},
		globalIn: map[string]bool{}, out: map[string][]Record{}, offsets: map[string]int64{},
		wall: cfg.start, changelog: map[string]int{},
	}
	p, err := t.ResolvePartitions(cfg.app, func(topic string) (int, bool) {
		if n, ok := cfg.partitions[topic]; ok {
			return n, true
		}
		return cfg.defParts, true
	})
	if err != nil {
		return nil, err
	}
	d.parts = p
	collector := topology.RecordCollectorFunc(d.send)
	globals := map[string]state.Store{}
	if g := t.Global(); g != nil {
		d.global, err = topology.NewGlobalTask(t, topology.TaskConfig{ApplicationID: cfg.app, Collector: collector, Stores: memstore.Supplier{}, WallClock: cfg.start})
		if err != nil {
			return nil, err
		}
		for _, s := range g.Stores() {
			globals[s] = d.global.Store(s)
		}
		for _, topic := range g.SourceTopics() {
			d.globalIn[t.TopicName(cfg.app, topic)] = true
		}
	}
	for _, sub := range t.SubTopologies() {
		for _, topic := range sub.SourceTopics() {
			full := t.TopicName(cfg.app, topic)
			d.routes[full] = append(d.routes[full], sub.ID())
		}
		for part := range p.Tasks[sub.ID()] {
			id := topology.TaskID{SubTopology: sub.ID(), Partition: int32(part)}
			task, err := topology.NewTask(t, topology.TaskConfig{
				ApplicationID: cfg.app, ID: id, Collector: collector, Stores: memstore.Supplier{},
				GlobalStores: globals, WallClock: cfg.start, Caching: cfg.caching,
			})
			if err != nil {
				return nil, err
			}
			d.tasks = append(d.tasks, task)
			d.byID[id] = task
		}
	}
	return d, nil
}

// Close closes every task.
func (d *Driver) Close() error {
	var first error
	for _, t := range d.tasks {
		if err := t.Close(); err != nil && first == nil {
			first = err
		}
	}
	if d.global != nil {
		if err := d.global.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (d *Driver) partitions(topic string) int {
	if n, ok := d.parts.Topics[topic]; ok {
		return n
	}
	if n, ok := d.cfg.partitions[topic]; ok {
		return n
	}
	return d.cfg.defParts
}

func (d *Driver) nextOffset(topic string, p int32) int64 {
	k := fmt.Sprintf("%s/%d", topic, p)
	o := d.offsets[k]
	d.offsets[k] = o + 1
	return o
}

func (d *Driver) partitionFor(topic string, key []byte) int32 {
	n := d.partitions(topic)
	if key == nil {
		d.rr++
		return d.rr % int32(n)
	}
	return int32((murmur2(key) & 0x7fffffff) % uint32(n))
}

// send is the tasks' RecordCollector.
func (d *Driver) send(r topology.OutputRecord) error {
	if d.isChangelog(r.Topic) {
		d.changelog[r.Topic]++
		return nil
	}
	if r.Partition < 0 {
		r.Partition = d.partitionFor(r.Topic, r.Key)
	}
	// The task reuses the bytes once Send returns.
	r.Key, r.Value = bytes.Clone(r.Key), bytes.Clone(r.Value)
	if !d.topo.IsRepartitionTopic(trimApp(d.cfg.app, r.Topic)) {
		d.out[r.Topic] = append(d.out[r.Topic], Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers})
	}
	if len(d.routes[r.Topic]) > 0 || d.globalIn[r.Topic] {
		d.queue = append(d.queue, topology.InputRecord{Topic: r.Topic, Partition: r.Partition, Offset: d.nextOffset(r.Topic, r.Partition),
			Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers})
	}
	return nil
}

func (d *Driver) isChangelog(topic string) bool {
	for _, it := range d.parts.Internal {
		if it.Name == topic && it.Kind == topology.Changelog {
			return true
		}
	}
	return false
}

func trimApp(app, topic string) string {
	if len(topic) > len(app)+1 && topic[:len(app)+1] == app+"-" {
		return topic[len(app)+1:]
	}
	return topic
}

// Pipe writes a record to a source topic and processes it, and everything it
// leads to, before returning. A nil value is a tombstone. The partition is
// chosen by key hash.
func (d *Driver) Pipe(topic string, key, value []byte, ts int64, headers ...topology.Header) error {
	if d.err != nil {
		return d.err
	}
	if len(d.routes[topic]) == 0 && !d.globalIn[topic] {
		return fmt.Errorf("streamtest: topic %q is not read by the topology", topic)
	}
	p := d.partitionFor(topic, key)
	d.queue = append(d.queue, topology.InputRecord{Topic: topic, Partition: p, Offset: d.nextOffset(topic, p), Key: key, Value: value, Timestamp: ts, Headers: headers})
	if err := d.drain(); err != nil {
		return err
	}
	d.piped++
	if d.cfg.commitEvery > 0 && d.piped%d.cfg.commitEvery == 0 {
		return d.Commit()
	}
	return nil
}

func (d *Driver) drain() error {
	for len(d.queue) > 0 {
		r := d.queue[0]
		d.queue = d.queue[1:]
		if d.globalIn[r.Topic] {
			if err := d.global.Process(r); err != nil {
				d.err = err
				return err
			}
			continue
		}
		for _, sub := range d.routes[r.Topic] {
			task := d.byID[topology.TaskID{SubTopology: sub, Partition: r.Partition}]
			if task == nil {
				d.err = fmt.Errorf("streamtest: no task %d_%d for %s", sub, r.Partition, r.Topic)
				return d.err
			}
			if err := task.Process(r); err != nil {
				d.err = err
				return err
			}
		}
	}
	return nil
}

// AdvanceWallClock moves wall-clock time forward by ms and fires the
// wall-clock punctuations that became due.
func (d *Driver) AdvanceWallClock(ms int64) error {
	if d.err != nil {
		return d.err
	}
	d.wall += ms
	for _, t := range d.tasks {
		if err := t.AdvanceWallClock(d.wall); err != nil {
			d.err = err
			return err
		}
		if err := d.drain(); err != nil {
			return err
		}
	}
	return nil
}

// Commit flushes every task's caches, in task order, and processes what
// that forwards (to repartition topics too), until nothing moves.
func (d *Driver) Commit() error {
	if d.err != nil {
		return d.err
	}
	for range len(d.tasks) + 1 {
		for _, t := range d.tasks {
			if err := t.Flush(); err != nil {
				d.err = err
				return err
			}
		}
		if len(d.queue) == 0 {
			return nil
		}
		if err := d.drain(); err != nil {
			return err
		}
	}
	return nil
}

// Output returns the records written to topic so far, in order.
func (d *Driver) Output(topic string) []Record { return slices.Clone(d.out[topic]) }

// ReadOutput returns the records written to topic and forgets them.
func (d *Driver) ReadOutput(topic string) []Record {
	out := d.out[topic]
	delete(d.out, topic)
	return out
}

// OutputTopics returns the names of the topics written so far, sorted.
func (d *Driver) OutputTopics() []string {
	var ts []string
	for t := range d.out {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// Tasks returns the driver's tasks (not the global one), by id.
func (d *Driver) Tasks() []*topology.Task { return slices.Clone(d.tasks) }

// Dropped sums the dropped-record counters of all tasks.
func (d *Driver) Dropped() map[topology.DropReason]int64 {
	out := map[topology.DropReason]int64{}
	all := d.tasks
	if d.global != nil {
		all = append(slices.Clone(all), d.global)
	}
	for _, t := range all {
		for r, n := range t.Dropped() {
			out[r] += n
		}
	}
	return out
}

// Stores returns every task's instance of the named store (one for a global
// store), by task id.
func (d *Driver) Stores(name string) []state.Store {
	var out []state.Store
	if d.topo.IsGlobalStore(name) && d.global != nil {
		return []state.Store{d.global.Store(name)}
	}
	for _, t := range d.tasks {
		if s := t.Store(name); s != nil {
			out = append(out, s)
		}
	}
	return out
}

// ChangelogRecords returns how many records were sent to a changelog topic
// (full name).
func (d *Driver) ChangelogRecords(topic string) int { return d.changelog[topic] }

// murmur2 is Kafka's default partitioner hash.
func murmur2(data []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch rest := n % 4; rest {
	case 3:
		h ^= uint32(data[n&^3+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[n&^3+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[n&^3])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
