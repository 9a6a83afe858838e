package runnel

// This file holds WaitIdle: knowing that an application has processed
// everything its input held at some moment, as tests and batch-like runs
// need, without comparing offsets by hand.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrAppNotRunning is returned by WaitIdle on an App that is not running:
// not started, or closed.
var ErrAppNotRunning = errors.New("stream: app not running")

// idlePollInterval is how often WaitIdle looks at the group's committed
// offsets while the application works.
const idlePollInterval = 25 * time.Millisecond

// idleCommitSpacing is how often, at most, WaitIdle asks the workers to
// commit: the default commit interval under ExactlyOnce.
const idleCommitSpacing = 100 * time.Millisecond

// WaitIdle waits until the application has processed, and committed, every
// record produced to its source topics before the call, and every record
// its own sub-topologies wrote to the topics they read from one another
// (repartition topics, and topics both written and read by the topology)
// as a consequence. It returns nil then, ctx's error if ctx ends first, and
// the application's error (or ErrAppNotRunning) if processing stops.
//
// Once WaitIdle returns nil, the output of those records is in the output
// topics and readable by a read_committed consumer: under ExactlyOnce the
// transactions holding it are committed (WaitIdle also waits for their
// markers to reach the output partitions, which may come a moment after
// the offsets are visible), under AtLeastOnce it was flushed before the
// offsets were committed. That makes it the way for a test to
// compare an application's output with what it expects, or for a batch
// job to know when it is done:
//
//	produce(input)
//	if err := app.WaitIdle(ctx); err != nil { ... }
//	check(readOutput())
//
// "Produced before the call" means visible to a read_committed consumer
// then: for each partition of a source topic WaitIdle takes the last stable
// offset when it is called, so records of a transaction still open then
// are not waited for (a transaction committed with Apache Kafka may become
// visible a moment after its producer's commit returns: Kafka writes the
// markers after answering). Transaction markers are never processed into
// anything, nor are aborted records under ExactlyOnce, so a partition
// counts as done once nothing between the group's committed offset and
// that target is a data record the application processes: a committed
// one, or under AtLeastOnce (which reads uncommitted records, as Kafka
// Streams does) an aborted one too. Then, stage by stage, WaitIdle takes the end
// offsets of the topics the application writes and reads back, waits for
// the transactions ending there to complete, and waits for them in the
// same way. The stages follow the topology's sub-topologies; a topology
// that feeds a topic back to itself is followed as many stages as it has
// sub-topologies. Records written by sinks that choose their topic per
// record are not followed. The topics of global stores are waited for
// too, up to their last stable offsets at the call: until this instance's
// global stores hold them.
//
// WaitIdle looks at the consumer group's committed offsets, so with
// several instances of one application it waits for all of them. While
// work remains it asks this instance's workers to commit at once rather
// than at the end of their commit interval (otherwise 30 s under
// AtLeastOnce): a record cache may then forward its updates sooner, which
// changes how many intermediate updates come out, never the final ones.
//
// WaitIdle reads the broker with a client of its own and may be called
// from any goroutine, at any time between Start and Close.
func (a *App) WaitIdle(ctx context.Context) error {
	a.mu.Lock()
	inst, done, brokers := a.inst, a.done, a.brokers
	a.mu.Unlock()
	if inst == nil {
		return ErrAppNotRunning
	}
	select {
	case <-done:
		if err := a.Err(); err != nil {
			return fmt.Errorf("stream: wait idle: application stopped: %w", err)
		}
		return ErrAppNotRunning
	default:
	}
	cl, err := kgo.NewClient(append(a.opts.clientOpts(), kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(100*time.Millisecond))...)
	if err != nil {
		return fmt.Errorf("stream: wait idle: %w", err)
	}
	defer cl.Close()
	w := &idleWait{cl: cl, adm: kadm.NewClient(cl), group: a.opts.ApplicationID, inst: inst, done: done, app: a}
	// The global stores' topics, as a read_committed consumer sees them
	// now, read by the instance's global store updater.
	globals := globalTopics(inst)
	var globalTargets kadm.ListedOffsets
	if len(globals) > 0 {
		if err := w.retry(ctx, func() (err error) {
			globalTargets, err = w.adm.ListCommittedOffsets(ctx, globals...)
			if err == nil {
				err = globalTargets.Error()
			}
			return err
		}); err != nil {
			return err
		}
	}
	for i, topics := range idleStages(inst) {
		if err := w.stage(ctx, topics, i > 0); err != nil {
			return err
		}
	}
	if err := w.globals(ctx, globals, globalTargets); err != nil {
		return err
	}
	// The group's offsets may be visible before the markers of the
	// transaction committing them reach the output partitions: wait for
	// those too, so that the output is readable when WaitIdle returns.
	return w.stable(ctx, outputTopics(inst))
}

// globalTopics returns the source topics of the global stores (full
// names).
func globalTopics(in *instance) []string {
	topo, app := in.app.topo, in.app.opts.ApplicationID
	g := topo.Global()
	if g == nil {
		return nil
	}
	var out []string
	for _, t := range g.SourceTopics() {
		out = append(out, topo.TopicName(app, t))
	}
	return out
}

// globals waits until this instance's global store updater has applied
// (and committed in the local state) topics up to targets. It reads
// read_committed, whatever the guarantee.
func (w *idleWait) globals(ctx context.Context, topics []string, targets kadm.ListedOffsets) error {
	if len(topics) == 0 {
		return nil
	}
	position := func(topic string, p int32) (int64, error) {
		pos := int64(-1)
		err := w.app.queries.readDB(func(db *pebblestore.DB) error {
			n, ok, err := db.Position(globalTaskName, positionName(topic, p))
			if ok {
				pos = n
			}
			return err
		})
		return pos, err
	}
	tick := time.NewTicker(idlePollInterval)
	defer tick.Stop()
	for {
		idle, err := w.idleFrom(ctx, topics, targets, false, 1, position)
		if errors.Is(err, ErrAppNotRunning) {
			err = w.wait(ctx, nil) // the application's error, if it has one
		}
		if err != nil || idle {
			return err
		}
		if err := w.wait(ctx, tick.C); err != nil {
			return err
		}
	}
}

// readDB calls f with the local state unless the application is not
// running (ErrAppNotRunning); detach waits for f to return.
func (q *queryState) readDB(f func(*pebblestore.DB) error) error {
	q.mu.Lock()
	if !q.running {
		q.mu.Unlock()
		return ErrAppNotRunning
	}
	q.readers.Add(1)
	db := q.db
	q.mu.Unlock()
	defer q.readers.Done()
	return f(db)
}

// outputTopics returns the topics the application's sinks write by name
// (full names).
func outputTopics(in *instance) []string {
	topo, app := in.app.topo, in.app.opts.ApplicationID
	var out []string
	for _, s := range topo.SubTopologies() {
		for _, t := range s.SinkTopics() {
			out = append(out, topo.TopicName(app, t))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// stable waits until no transaction open now holds records of topics:
// their last stable offsets reach their end offsets as listed now.
func (w *idleWait) stable(ctx context.Context, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	var ends kadm.ListedOffsets
	if err := w.retry(ctx, func() (err error) {
		ends, err = w.adm.ListEndOffsets(ctx, topics...)
		if err == nil {
			err = ends.Error()
		}
		return err
	}); err != nil {
		return err
	}
	tick := time.NewTicker(idlePollInterval)
	defer tick.Stop()
	for {
		stable, err := w.adm.ListCommittedOffsets(ctx, topics...)
		if err == nil {
			err = stable.Error()
		}
		if err != nil {
			if err := w.passRetriable(ctx, err); err != nil {
				return err
			}
		} else {
			done := true
			ends.Each(func(e kadm.ListedOffset) {
				s, ok := stable.Lookup(e.Topic, e.Partition)
				done = done && ok && s.Offset >= e.Offset
			})
			if done {
				return nil
			}
		}
		if err := w.wait(ctx, tick.C); err != nil {
			return err
		}
	}
}

// idleStages returns the application's input topics (full names) in the
// order WaitIdle waits for them: first the topics no sub-topology writes,
// then, stage by stage, the topics written by a sub-topology that reads a
// topic of an earlier stage. A topic's stage is one more than the latest
// stage among the inputs of the sub-topologies writing it; a cycle stops
// at as many stages as there are sub-topologies.
func idleStages(in *instance) [][]string {
	topo, app := in.app.topo, in.app.opts.ApplicationID
	subs := topo.SubTopologies()
	writers := map[string][]int{} // full topic -> sub-topologies writing it
	for i, s := range subs {
		for _, t := range s.SinkTopics() {
			name := topo.TopicName(app, t)
			writers[name] = append(writers[name], i)
		}
	}
	level := map[string]int{}
	for _, t := range in.topics() {
		level[t] = 0
	}
	// Relax until nothing changes, at most len(subs) times: the levels of
	// an acyclic graph settle by then.
	for range len(subs) {
		changed := false
		for t := range level {
			for _, w := range writers[t] {
				for _, src := range in.subs[w] {
					if l := min(level[src]+1, len(subs)); l > level[t] {
						level[t], changed = l, true
					}
				}
			}
		}
		if !changed {
			break
		}
	}
	var stages [][]string
	for t, l := range level {
		for len(stages) <= l {
			stages = append(stages, nil)
		}
		stages[l] = append(stages[l], t)
	}
	for _, s := range stages {
		slices.Sort(s)
	}
	return stages
}

// idleWait is one WaitIdle call's state.
type idleWait struct {
	app   *App
	inst  *instance
	done  <-chan struct{}
	cl    *kgo.Client
	adm   *kadm.Client
	group string
}

// stage waits until the group has processed topics up to their last
// stable offsets (written: their end offsets, once stable) as listed now.
func (w *idleWait) stage(ctx context.Context, topics []string, written bool) error {
	if len(topics) == 0 {
		return nil
	}
	list := w.adm.ListCommittedOffsets
	if written {
		// The application's own transactions may still be completing:
		// everything up to the end is waited for, once stable.
		list = w.adm.ListEndOffsets
	}
	var targets kadm.ListedOffsets
	if err := w.retry(ctx, func() (err error) {
		targets, err = list(ctx, topics...)
		if err == nil {
			err = targets.Error()
		}
		return err
	}); err != nil {
		return err
	}
	tick := time.NewTicker(idlePollInterval)
	defer tick.Stop()
	var asked time.Time
	for {
		idle, err := w.idle(ctx, topics, targets, written)
		if err != nil {
			return err
		}
		if idle {
			return nil
		}
		// Not at every look: a commit per turn would slow the work
		// waited for.
		if time.Since(asked) >= idleCommitSpacing {
			w.inst.askCommit()
			asked = time.Now()
		}
		if err := w.wait(ctx, tick.C); err != nil {
			return err
		}
	}
}

// wait waits for the next tick, failing if ctx ends or the application
// stops.
func (w *idleWait) wait(ctx context.Context, tick <-chan time.Time) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-w.done:
		if err := w.app.Err(); err != nil {
			return fmt.Errorf("stream: wait idle: application stopped: %w", err)
		}
		return ErrAppNotRunning
	case <-tick:
		return nil
	}
}

// retry calls f until it succeeds, ctx ends or the application stops; the
// errors of a busy or changing cluster pass.
func (w *idleWait) retry(ctx context.Context, f func() error) error {
	tick := time.NewTicker(idlePollInterval)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !kerr.IsRetriable(err) && !errors.Is(err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("stream: wait idle: %w", err)
		}
		if err := w.wait(ctx, tick.C); err != nil {
			return err
		}
	}
}

// idle reports whether every partition of targets is done: the group's
// committed offset reaches its target, or nothing from there to the target
// is a committed data record.
func (w *idleWait) idle(ctx context.Context, topics []string, targets kadm.ListedOffsets, written bool) (bool, error) {
	committed, err := w.adm.FetchOffsets(ctx, w.group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return false, w.passRetriable(ctx, err)
	}
	return w.idleFrom(ctx, topics, targets, written, w.isolation(), func(topic string, p int32) (int64, error) {
		if c, ok := committed.Lookup(topic, p); ok {
			return c.At, nil
		}
		return -1, nil
	})
}

// idleFrom is idle with the positions processed (-1: none) given by
// position, and the records read at isolation level iso.
func (w *idleWait) idleFrom(ctx context.Context, topics []string, targets kadm.ListedOffsets, written bool, iso int8, position func(topic string, p int32) (int64, error)) (bool, error) {
	var err error
	var stable kadm.ListedOffsets
	if written {
		if stable, err = w.adm.ListCommittedOffsets(ctx, topics...); err == nil {
			err = stable.Error()
		}
		if err != nil {
			return false, w.passRetriable(ctx, err)
		}
	}
	starts, err := w.adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return false, w.passRetriable(ctx, err)
	}
	var pending []kadm.ListedOffset // partitions to read, Offset: where from
	idle := true
	targets.Each(func(t kadm.ListedOffset) {
		if !idle || err != nil {
			return
		}
		if written {
			if s, ok := stable.Lookup(t.Topic, t.Partition); !ok || s.Offset < t.Offset {
				idle = false // a transaction before the target is still open
				return
			}
		}
		var from int64
		if from, err = position(t.Topic, t.Partition); err != nil {
			return
		}
		if s, ok := starts.Lookup(t.Topic, t.Partition); ok {
			from = max(from, s.Offset)
		}
		if from < t.Offset {
			pending = append(pending, kadm.ListedOffset{Topic: t.Topic, Partition: t.Partition, Offset: from})
		}
	})
	if err != nil || !idle {
		return false, err
	}
	for _, p := range pending {
		target, _ := targets.Lookup(p.Topic, p.Partition)
		busy, err := w.dataBetween(ctx, p.Topic, p.Partition, p.Offset, target.Offset, iso)
		if err != nil || busy {
			return false, err
		}
	}
	return true, nil
}

// passRetriable returns nil for an error WaitIdle should try again after
// (a busy or changing cluster), else the error.
func (w *idleWait) passRetriable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if kerr.IsRetriable(err) || errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnstableOffsetCommit) {
		return nil
	}
	return fmt.Errorf("stream: wait idle: %w", err)
}

// isolation is the isolation level the application reads its input
// with: read_committed (1) under ExactlyOnce, read_uncommitted (0) under
// AtLeastOnce, which processes aborted records too.
func (w *idleWait) isolation() int8 {
	if w.app.opts.Guarantee == AtLeastOnce {
		return 0
	}
	return 1
}

// dataBetween reports whether a data record the application processes
// sits in [from, to) of the partition, reading it from its leader at the
// application's isolation level: control records never count, aborted
// records only under AtLeastOnce (isolation 0: read_uncommitted). A read that cannot
// tell yet (the leader moved, the records were deleted meanwhile) reports
// busy, for the caller to look again.
func (w *idleWait) dataBetween(ctx context.Context, topic string, partition int32, from, to int64, isolation int8) (bool, error) {
	meta, err := w.adm.Metadata(ctx, topic)
	if err != nil {
		return true, w.passRetriable(ctx, err)
	}
	td, ok := meta.Topics[topic]
	if !ok || td.Err != nil {
		return true, nil
	}
	pd, ok := td.Partitions[partition]
	if !ok || pd.Err != nil || pd.Leader < 0 {
		return true, nil
	}
	leader := w.cl.Broker(int(pd.Leader))
	iso := kgo.ReadCommitted()
	if isolation == 0 {
		iso = kgo.ReadUncommitted()
	}
	for at := from; at < to; {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MinBytes = 1
		req.MaxBytes = 1 << 20
		req.IsolationLevel = isolation
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, td.ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, at, 1<<20
		rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := leader.Request(ctx, req)
		if err != nil {
			return true, w.passRetriable(ctx, err)
		}
		fr := resp.(*kmsg.FetchResponse)
		if err := kerr.ErrorForCode(fr.ErrorCode); err != nil {
			return true, w.passRetriable(ctx, err)
		}
		if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
			return true, nil
		}
		got := &fr.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(got.ErrorCode); err != nil {
			if errors.Is(err, kerr.OffsetOutOfRange) {
				return true, nil // deleted meanwhile: the next look starts further on
			}
			return true, w.passRetriable(ctx, err)
		}
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			KeepControlRecords: true, Offset: at, IsolationLevel: iso, Topic: topic, Partition: partition,
		}, got, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			return true, fmt.Errorf("stream: wait idle: read %s[%d] at %d: %w", topic, partition, at, fp.Err)
		}
		for _, r := range fp.Records {
			if r.Offset >= to {
				return false, nil
			}
			if !r.Attrs.IsControl() {
				return true, nil
			}
		}
		if next <= at {
			return true, nil // nothing came back: look again later
		}
		at = next
	}
	return false, nil
}

// askCommit asks every worker of the instance to commit at its next turn.
func (in *instance) askCommit() {
	for i := range in.commitAsked {
		in.commitAsked[i].Store(true)
	}
}

// commitAskedOf reports whether a commit was asked of worker w since the
// last call, and takes the request.
func (in *instance) commitAskedOf(w int) bool {
	return w < len(in.commitAsked) && in.commitAsked[w].Swap(false)
}
