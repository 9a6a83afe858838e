package topology

import (
	"cmp"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/cache"
)

// TaskID names a task: a sub-topology and the input partition it processes.
type TaskID struct {
	SubTopology int
	Partition   int32
}

// String prints the id as Kafka Streams does: "<sub-topology>_<partition>".
func (id TaskID) String() string { return fmt.Sprintf("%d_%d", id.SubTopology, id.Partition) }

// ErrDeserialization is wrapped by Task.Process when a source cannot
// deserialize a record; the runtime's deserialization error handler decides
// whether to skip the record or fail.
var ErrDeserialization = errors.New("topology: deserialization failed")

// ErrPanic is wrapped by the error a task fails with when a processor,
// punctuator, serde or store panics: the panic is recovered, so a bug in user
// code fails its task instead of crashing the process.
var ErrPanic = errors.New("topology: panic")

// ErrUnknownTopic is returned by Task.Process for a record of a topic the
// task does not read.
var ErrUnknownTopic = errors.New("topology: record of a topic the task does not read")

// TaskConfig is what a driver gives a task.
type TaskConfig struct {
	// ApplicationID prefixes internal topic names.
	ApplicationID string
	// ID is the task's sub-topology and partition.
	ID TaskID
	// Collector receives records for sink, repartition and changelog topics.
	Collector RecordCollector
	// Stores opens the task's stores. It may be nil if the sub-topology has
	// no stores.
	Stores state.Supplier
	// GlobalStores holds the instance's global stores by name, for tasks
	// whose processors read them.
	GlobalStores map[string]state.Store
	// WallClock is the wall-clock time at creation, in ms since the epoch.
	WallClock int64
	// Caching puts a record cache in front of the stores whose spec asks
	// for one (Kafka Streams: cache.max.bytes.buffering > 0).
	Caching bool
	// CacheBytes bounds the task's record cache when Caching is on; past it
	// the least recently used entry is flushed early. Default
	// DefaultCacheBytes.
	CacheBytes int64
	// Drops, when set, is told of every record the task drops, as it
	// happens (for metrics; Task.Dropped keeps the totals either way).
	Drops DropCounter
}

// DefaultCacheBytes is the default bound of a task's record cache, 10 MiB,
// as Kafka Streams' statestore.cache.max.bytes; runnel.App and streamtest
// use it too.
const DefaultCacheBytes = 10 << 20

// DropCounter counts the records a task drops instead of processing: late
// records past a window's grace, records with an invalid timestamp, and so
// on. The task calls it on its own goroutine.
type DropCounter interface {
	RecordDropped(task TaskID, reason DropReason)
}

// Task runs one sub-topology for one partition. It is a thread-unsafe state
// machine: the goroutine that owns it feeds it input records (Process) and
// time (AdvanceWallClock), flushes it before a commit (Flush) and closes it;
// output leaves through the RecordCollector. The task does no IO of its own
// and never blocks, so a runtime can drive many tasks from one loop and a test
// driver can drive them deterministically.
//
// A task processes records in the order it is given them; choosing among the
// buffered records of several input partitions (Kafka Streams picks the
// smallest timestamp) is the driver's job.
//
// Errors are sticky: after a processor, punctuator, store or collector
// fails, every later call returns the first error and the driver should
// close the task and recover (re-create it from its committed state). A
// panic in any of them is recovered into such an error (ErrPanic). A record
// a source cannot deserialize (ErrDeserialization) is the exception: nothing
// has run for it, so the task stays usable and the driver may skip it.
type Task struct {
	topo    *Topology
	sub     *SubTopology
	cfg     TaskConfig
	insts   []*nodeInst          // by sub.nodes order
	sources map[string]*nodeInst // by full topic name
	stores  map[string]state.Store
	cache   *cache.Cache // shared by the task's cached stores; nil without caching

	// Invariant: streamTime is -1 or the largest valid timestamp processed.
	streamTime int64
	wallClock  int64
	recordTime int64 // timestamp of the record being processed, for stores
	meta       RecordMetadata
	hasMeta    bool

	schedules []*schedule
	dropped   map[DropReason]int64
	processed int64
	err       error
	closed    bool
}

type nodeInst struct {
	n        *node
	task     *Task
	proc     rawProcessor
	children []*nodeInst
	byName   map[string]*nodeInst
	topic    string // sinks with a fixed topic: the full name
	// typed is how a typed processor or sink takes its input unboxed: a
	// func(Record[K, V]) for its input types; nil for raw nodes and
	// sources. Parents of the same output types call it directly.
	typed any
	// ingest is a source's path from bytes to its children (Task.Process).
	ingest func(InputRecord) error
	// keyBuf and valueBuf are a sink's serialized key and value, reused
	// from record to record where its serdes are Appenders: the collector
	// copies what it keeps.
	keyBuf, valueBuf []byte
}

// NewTask instantiates sub-topology cfg.ID.SubTopology of t for partition
// cfg.ID.Partition: it opens the task's stores through cfg.Stores, turns on
// changelogging, and initializes the processors (children before parents,
// so punctuations and caches are ready before records can arrive).
func NewTask(t *Topology, cfg TaskConfig) (*Task, error) {
	if cfg.ID.SubTopology < 0 || cfg.ID.SubTopology >= len(t.subs) {
		return nil, fmt.Errorf("topology: no sub-topology %d", cfg.ID.SubTopology)
	}
	return newTask(t, t.subs[cfg.ID.SubTopology], cfg)
}

// NewGlobalTask instantiates the global sub-topology, which keeps the global
// stores up to date from every partition of their topics. cfg.ID.Partition
// is ignored. The stores it opens are readable through Task.Store, to be
// handed to the other tasks as TaskConfig.GlobalStores.
func NewGlobalTask(t *Topology, cfg TaskConfig) (*Task, error) {
	if t.global == nil {
		return nil, errors.New("topology: no global stores")
	}
	cfg.ID = TaskID{SubTopology: t.global.id, Partition: -1}
	return newTask(t, t.global, cfg)
}

func newTask(t *Topology, sub *SubTopology, cfg TaskConfig) (*Task, error) {
	if cfg.Collector == nil {
		return nil, errors.New("topology: task needs a RecordCollector")
	}
	task := &Task{
		topo:       t,
		sub:        sub,
		cfg:        cfg,
		sources:    map[string]*nodeInst{},
		stores:     map[string]state.Store{},
		streamTime: -1,
		wallClock:  cfg.WallClock,
		dropped:    map[DropReason]int64{},
	}
	if err := task.openStores(); err != nil {
		task.closeStores()
		return nil, err
	}
	byNode := map[*node]*nodeInst{}
	for _, n := range sub.nodes {
		in := &nodeInst{n: n, task: task, byName: map[string]*nodeInst{}}
		byNode[n] = in
		task.insts = append(task.insts, in)
		switch n.kind {
		case sourceNode:
			for _, topic := range n.topics {
				task.sources[t.TopicName(cfg.ApplicationID, topic)] = in
			}
		case processorNode:
			in.proc = n.supply()
			if tn, ok := in.proc.(typedNode); ok {
				in.typed = tn.typedIn(in)
			}
		case sinkNode:
			in.topic = t.TopicName(cfg.ApplicationID, n.topic)
			in.typed = n.sinkIn(in)
			// Not nil: appending nothing to them must give a non-null
			// empty key or value.
			in.keyBuf, in.valueBuf = make([]byte, 0, 16), make([]byte, 0, 256)
		}
	}
	for _, in := range task.insts {
		for _, c := range in.n.children {
			ci := byNode[c]
			in.children = append(in.children, ci)
			in.byName[c.name] = ci
		}
	}
	// After the children's typed entries: a source forwards to them.
	for _, in := range task.insts {
		if in.n.kind == sourceNode {
			in.ingest = in.n.ingest(in)
		}
	}
	for i := len(task.insts) - 1; i >= 0; i-- {
		in := task.insts[i]
		if in.proc == nil {
			continue
		}
		if err := initProcessor(in); err != nil {
			task.closeStores()
			return nil, fmt.Errorf("topology: task %s: init %q: %w", cfg.ID, in.n.name, err)
		}
	}
	return task, nil
}

// initProcessor runs in's Init, recovering a panic into an error.
func initProcessor(in *nodeInst) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v\n%s", ErrPanic, p, debug.Stack())
		}
	}()
	return in.proc.Init(&nodeContext{in})
}

// recoverPanic, deferred by the entry points that run user code, turns a
// panic into the task's sticky error and returns it through *err.
func (t *Task) recoverPanic(err *error) {
	if p := recover(); p != nil {
		t.fail(fmt.Errorf("%w: task %s: %v\n%s", ErrPanic, t.cfg.ID, p, debug.Stack()))
		t.hasMeta = false
		*err = t.err
	}
}

// decode deserializes in for source n; a serde that panics on bad bytes
// is a deserialization error like one that returns an error.
func decode(n *node, in InputRecord) (r Record[any, any], err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("serde panicked: %v", p)
		}
	}()
	return n.decode(in)
}

func (t *Task) drop(reason DropReason) {
	t.dropped[reason]++
	if t.cfg.Drops != nil {
		t.cfg.Drops.RecordDropped(t.cfg.ID, reason)
	}
}

// CacheHitRatio returns the share of the task's record-cache lookups that
// hit the cache since the task was created; ok is false when the task has
// no cache.
func (t *Task) CacheHitRatio() (ratio float64, ok bool) {
	if t.cache == nil {
		return 0, false
	}
	return t.cache.HitRatio(), true
}

func (t *Task) openStores() error {
	for _, name := range t.sub.stores {
		spec := t.topo.stores[name].spec
		if t.cfg.Stores == nil {
			return fmt.Errorf("topology: task %s needs store %q but has no state.Supplier", t.cfg.ID, name)
		}
		var s state.Store
		var err error
		switch spec.Kind {
		case KeyValueStore:
			s, err = t.cfg.Stores.KeyValueStore(name)
		case WindowStore:
			s, err = t.cfg.Stores.WindowStore(name, spec.Window.EnsureDefaults())
		case SessionStore:
			s, err = t.cfg.Stores.SessionStore(name, spec.Session.EnsureDefaults())
		}
		if err != nil {
			return fmt.Errorf("topology: task %s: open store %q: %w", t.cfg.ID, name, err)
		}
		if t.cfg.Caching && spec.Caching {
			if t.cache == nil {
				t.cache = cache.New(cmp.Or(t.cfg.CacheBytes, DefaultCacheBytes))
			}
			s = withCache(t.cache, s, spec, t.now)
		}
		if l, ok := s.(state.Logged); ok && spec.Logging && !t.sub.global {
			l.SetChangeLogger(&changeLogger{task: t, topic: ChangelogTopic(t.cfg.ApplicationID, name)}, t.now)
		}
		t.stores[name] = s
	}
	return nil
}

func (t *Task) now() int64 { return t.recordTime }

// changeLogger sends a store's writes to its changelog partition, which is
// the task's partition.
type changeLogger struct {
	task  *Task
	topic string
}

func (l *changeLogger) LogChange(key, value []byte, ts int64) {
	// The collector copies what it keeps: no copy here.
	r := OutputRecord{Topic: l.topic, Partition: l.task.cfg.ID.Partition, Key: key, Value: value, Timestamp: ts}
	if err := l.task.cfg.Collector.Send(r); err != nil {
		l.task.fail(fmt.Errorf("topology: task %s: changelog %s: %w", l.task.cfg.ID, l.topic, err))
	}
}

func (t *Task) fail(err error) {
	if t.err == nil {
		t.err = err
	}
}

// ID returns the task's id.
func (t *Task) ID() TaskID { return t.cfg.ID }

// SourceTopics returns the full names of the topics the task reads, sorted.
func (t *Task) SourceTopics() []string {
	out := make([]string, 0, len(t.sources))
	for topic := range t.sources {
		out = append(out, topic)
	}
	slices.Sort(out)
	return out
}

// StreamTime returns the largest record timestamp processed, or -1.
func (t *Task) StreamTime() int64 { return t.streamTime }

// Processed returns how many input records the task has processed.
func (t *Task) Processed() int64 { return t.processed }

// Dropped returns how many records were dropped for each reason.
func (t *Task) Dropped() map[DropReason]int64 {
	out := make(map[DropReason]int64, len(t.dropped))
	for k, v := range t.dropped {
		out[k] = v
	}
	return out
}

// Store returns the task's instance of the named store (for interactive
// queries and tests; writing to it bypasses the topology).
func (t *Task) Store(name string) state.Store { return t.stores[name] }

// Err returns the task's sticky error.
func (t *Task) Err() error { return t.err }

// Process runs one input record through the sub-topology, then fires the
// stream-time punctuations it made due.
func (t *Task) Process(in InputRecord) (err error) {
	defer t.recoverPanic(&err)
	if t.err != nil {
		return t.err
	}
	if t.closed {
		return errors.New("topology: task closed")
	}
	src, ok := t.sources[in.Topic]
	if !ok {
		return fmt.Errorf("%w: task %s, topic %q", ErrUnknownTopic, t.cfg.ID, in.Topic)
	}
	if err := src.ingest(in); err != nil {
		return err
	}
	t.hasMeta = false
	t.punctuate(StreamTime, t.streamTime)
	return t.err
}

// ingestBoxed is a source's path for the records its typed one does not
// take: those with a null key or value, which its raw children must see
// as nil, not as a boxed zero value.
func (t *Task) ingestBoxed(src *nodeInst, in InputRecord) error {
	r, err := decode(src.n, in)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDeserialization, err)
	}
	ts := in.Timestamp
	if src.n.stamp != nil {
		ts = src.n.stamp(r, ts)
	}
	if !t.begin(in, ts) {
		return nil
	}
	r.Timestamp = ts
	src.forward(r)
	return nil
}

// begin starts processing in, whose timestamp is ts, or drops it for an
// invalid timestamp and reports false.
func (t *Task) begin(in InputRecord, ts int64) bool {
	if ts < 0 {
		t.drop(DropInvalidTimestamp)
		return false
	}
	t.processed++
	t.streamTime = max(t.streamTime, ts)
	t.meta = RecordMetadata{Topic: in.Topic, Partition: in.Partition, Offset: in.Offset}
	t.hasMeta = true
	t.recordTime = ts
	return true
}

// AdvanceWallClock sets the wall-clock time (ms since the epoch) and fires
// the wall-clock punctuations it made due. Time never goes back: an earlier
// now is ignored.
func (t *Task) AdvanceWallClock(now int64) (err error) {
	defer t.recoverPanic(&err)
	if t.err != nil {
		return t.err
	}
	if now > t.wallClock {
		t.wallClock = now
	}
	t.punctuate(WallClockTime, t.wallClock)
	return t.err
}

// Flush pushes buffered state down: record caches forward their pending
// updates downstream and every store flushes. The runtime calls it before
// committing; the test driver calls it when caching is on and it commits.
func (t *Task) Flush() (err error) {
	defer t.recoverPanic(&err)
	if t.err != nil {
		return t.err
	}
	for _, name := range t.sub.stores {
		t.recordTime = t.streamTime
		if err := t.stores[name].Flush(); err != nil {
			t.fail(fmt.Errorf("topology: task %s: flush store %q: %w", t.cfg.ID, name, err))
		}
	}
	return t.err
}

// Close closes the processors (parents first) and then the stores. It does
// not flush: writes still in record caches are dropped (state.Discarder),
// reaching neither the stores nor their changelogs nor downstream. A clean
// shutdown calls Flush (and commits) first; after an aborted exactly-once
// transaction, Close alone is right, and the state is restored from the
// changelog.
func (t *Task) Close() (err error) {
	if t.closed {
		return nil
	}
	t.closed = true
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: task %s: close: %v\n%s", ErrPanic, t.cfg.ID, p, debug.Stack())
		}
	}()
	var errs []error
	for _, in := range t.insts {
		if in.proc != nil {
			if err := in.proc.Close(); err != nil {
				errs = append(errs, fmt.Errorf("topology: task %s: close %q: %w", t.cfg.ID, in.n.name, err))
			}
		}
	}
	errs = append(errs, t.closeStores())
	return errors.Join(errs...)
}

func (t *Task) closeStores() error {
	var errs []error
	for _, name := range t.sub.stores {
		s := t.stores[name]
		if s == nil {
			continue
		}
		var err error
		if d, ok := s.(state.Discarder); ok {
			err = d.Discard()
		} else {
			err = s.Close()
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// forward passes r to every child of in.
func (in *nodeInst) forward(r Record[any, any]) {
	for _, c := range in.children {
		c.process(r)
	}
}

func (in *nodeInst) process(r Record[any, any]) {
	if in.stopped() {
		return
	}
	switch in.n.kind {
	case processorNode:
		if err := in.proc.Process(r); err != nil {
			in.processorFailed(err)
		}
	case sinkNode:
		k, v, err := in.n.encode(in, r)
		topic := ""
		if err == nil && in.n.topicFunc != nil {
			topic = in.n.topicFunc(r)
		}
		in.send(k, v, err, topic, r.Timestamp, r.Headers)
	}
}

// stopped reports whether records no longer move: the task failed or is
// closing (closing stores may flush caches).
func (in *nodeInst) stopped() bool { return in.task.err != nil || in.task.closed }

// processorFailed fails the task with the error of in's processor.
func (in *nodeInst) processorFailed(err error) {
	t := in.task
	t.fail(fmt.Errorf("topology: task %s: processor %q: %w", t.cfg.ID, in.n.name, err))
}

// send hands the sink in's record, encoded as k and v (or failed to
// encode with err), to the collector; topic is the topic a TopicFunc
// chose, unprefixed, or "" for the sink's own.
func (in *nodeInst) send(k, v []byte, err error, topic string, ts int64, h Headers) {
	t := in.task
	if err != nil {
		t.fail(fmt.Errorf("topology: task %s: %w", t.cfg.ID, err))
		return
	}
	full := in.topic
	if in.n.topicFunc != nil {
		full = t.topo.TopicName(t.cfg.ApplicationID, topic)
	}
	out := OutputRecord{Topic: full, Partition: -1, Key: k, Value: v, Timestamp: ts, Headers: h}
	if err := t.cfg.Collector.Send(out); err != nil {
		t.fail(fmt.Errorf("topology: task %s: sink %q: %w", t.cfg.ID, in.n.name, err))
	}
}

// schedule is one punctuation.
type schedule struct {
	typ       PunctuationType
	interval  int64
	next      int64 // -1: stream time not known yet
	fn        Punctuator
	node      *nodeInst
	cancelled bool
}

func (s *schedule) Cancel() { s.cancelled = true }

// punctuate fires the due punctuations of one clock, each at most once per
// call, in the order they were scheduled; a punctuation that fell several
// intervals behind fires once and is rescheduled after now.
func (t *Task) punctuate(typ PunctuationType, now int64) {
	if now < 0 {
		return
	}
	for _, s := range t.schedules {
		if s.cancelled || s.typ != typ {
			continue
		}
		if s.next < 0 {
			s.next = now + s.interval
			continue
		}
		if now < s.next {
			continue
		}
		s.next += ((now-s.next)/s.interval + 1) * s.interval
		t.recordTime = now
		if err := s.fn(now); err != nil {
			t.fail(fmt.Errorf("topology: task %s: punctuation of %q: %w", t.cfg.ID, s.node.n.name, err))
		}
		if t.err != nil {
			return
		}
	}
	t.schedules = slices.DeleteFunc(t.schedules, func(s *schedule) bool { return s.cancelled })
}

// nodeContext is the Context of one processor instance.
type nodeContext struct{ in *nodeInst }

var _ rawContext = (*nodeContext)(nil)

func (c *nodeContext) Forward(r Record[any, any]) { c.in.forward(r) }

func (c *nodeContext) ForwardTo(child string, r Record[any, any]) {
	ci, ok := c.in.byName[child]
	if !ok {
		c.in.task.fail(fmt.Errorf("topology: %q has no child %q", c.in.n.name, child))
		return
	}
	ci.process(r)
}

func (c *nodeContext) Metadata() (RecordMetadata, bool) { return c.in.task.meta, c.in.task.hasMeta }
func (c *nodeContext) TaskID() TaskID                   { return c.in.task.cfg.ID }
func (c *nodeContext) ApplicationID() string            { return c.in.task.cfg.ApplicationID }
func (c *nodeContext) StreamTime() int64                { return c.in.task.streamTime }
func (c *nodeContext) WallClockTime() int64             { return c.in.task.wallClock }
func (c *nodeContext) Drop(reason DropReason)           { c.in.task.drop(reason) }

func (c *nodeContext) Schedule(interval time.Duration, typ PunctuationType, fn Punctuator) Cancellable {
	ms := max(interval.Milliseconds(), 1)
	s := &schedule{typ: typ, interval: ms, fn: fn, node: c.in, next: -1}
	t := c.in.task
	switch {
	case typ == WallClockTime:
		s.next = t.wallClock + ms
	case t.streamTime >= 0:
		s.next = t.streamTime + ms
	}
	t.schedules = append(t.schedules, s)
	return s
}

func (c *nodeContext) Store(name string) any {
	if !slices.Contains(c.in.n.stores, name) {
		return nil
	}
	if s, ok := c.in.task.stores[name]; ok {
		return s
	}
	if s, ok := c.in.task.cfg.GlobalStores[name]; ok {
		return s
	}
	return nil
}
