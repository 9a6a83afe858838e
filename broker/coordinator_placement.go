package broker

import (
	"context"
	"errors"
	"sync"

	"github.com/runnel-dev/runnel/broker/internal/group"
	"github.com/runnel-dev/runnel/broker/internal/txn"
)

// Coordinators move with their partitions. The group coordinator of a
// __consumer_offsets partition, and the transaction coordinator of a
// __transaction_state partition, run on the partition's leader, as
// Kafka's do: when this broker becomes the leader (at a new leader
// epoch), the coordinator loads the partition's shard from the
// replicated log; when it stops leading, the shard is unloaded. Clients
// find the leader with FindCoordinator, which names the partition's
// leader from metadata; requests that reach a broker that does not hold
// the shard get NOT_COORDINATOR, and those that reach it while it loads
// get COORDINATOR_LOAD_IN_PROGRESS (package broker/internal/coordinator).
//
// Leadership changes are applied under the partitions' reconcile lock
// (applyRole), which calls place. Loading runs in the background: the
// shard first waits for the high watermark to reach the log end it
// found (offsetsPartition.Settle: its predecessor may have acknowledged
// records this broker's high watermark does not cover yet), then
// replays; place itself only starts or stops it. A transaction
// coordinator that loads a shard completes the transactions it finds
// prepared (PrepareCommit, PrepareAbort) by writing their markers. The
// coordinators' timers (transaction timeouts, id and offset expiry) act
// only on shards that serve (coordinator.Shard.ServingLocked), so they
// stop with an unload; marker writes in flight stop with the shard's
// context.
//
// The coordinators are created after the partitions open (they need the
// partition counts of their topics); install places every shard this
// broker leads at that point, and place those that change after.

// coordPlacement tracks which coordinator shards this broker serves.
type coordPlacement struct {
	b *Broker

	mu sync.Mutex // guards the following
	// groups and txns are nil until installed.
	groups *group.Coordinator
	txns   *txn.Coordinator
	// placed is the partition (and its leader epoch) each loaded shard
	// reads. Invariant: a shard is loaded in its coordinator iff its
	// partition is in placed.
	placed map[topicPartition]placedShard
}

// placedShard is what a shard was loaded from: a partition reopened (a
// follower's truncation) or led at a new epoch loads it again.
type placedShard struct {
	p     *partition
	epoch int32
}

func newCoordPlacement(b *Broker) *coordPlacement {
	return &coordPlacement{b: b, placed: make(map[topicPartition]placedShard)}
}

// coordinatorTopic reports whether topic holds a coordinator's state.
func coordinatorTopic(topic string) bool { return topic == offsetsTopic || topic == txnStateTopic }

// installGroups makes g the group coordinator and loads the
// __consumer_offsets partitions this broker leads.
func (cp *coordPlacement) installGroups(g *group.Coordinator) {
	cp.mu.Lock()
	cp.groups = g
	cp.mu.Unlock()
	cp.placeAll(offsetsTopic)
}

// installTxns makes c the transaction coordinator and loads the
// __transaction_state partitions this broker leads.
func (cp *coordPlacement) installTxns(c *txn.Coordinator) {
	cp.mu.Lock()
	cp.txns = c
	cp.mu.Unlock()
	cp.placeAll(txnStateTopic)
}

// placeAll places every local partition of topic.
func (cp *coordPlacement) placeAll(topic string) {
	// The reconcile lock orders this with applyRole's calls, so a
	// leadership change applied meanwhile is placed after, not before.
	cp.b.parts.reconcileMu.Lock()
	defer cp.b.parts.reconcileMu.Unlock()
	for _, p := range cp.b.parts.all() {
		if p.topic == topic {
			cp.place(topicPartition{p.topic, p.index}, p)
		}
	}
}

// place loads the shard of tp when this broker leads p and the shard is
// not loaded from p at its epoch, and unloads it when this broker does
// not lead p. Other topics are left alone.
// REQUIRES: ps.reconcileMu held (p's role does not change meanwhile).
func (cp *coordPlacement) place(tp topicPartition, p *partition) {
	if !coordinatorTopic(tp.topic) {
		return
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	load, unload := cp.shardFuncsLocked(tp.topic)
	if load == nil {
		return // placed when the coordinator is installed
	}
	epoch, leading := p.epoch(), p.isLeader()
	cur, ok := cp.placed[tp]
	switch {
	case leading && ok && cur == (placedShard{p, epoch}):
	case leading:
		// Load unloads what was there first.
		load(tp.partition, p, epoch)
		cp.placed[tp] = placedShard{p, epoch}
		cp.b.logger.Info("coordinator loading", "topic", tp.topic, "partition", tp.partition, "leader_epoch", epoch)
	case ok:
		unload(tp.partition)
		delete(cp.placed, tp)
		cp.b.logger.Info("coordinator unloaded", "topic", tp.topic, "partition", tp.partition)
	}
}

// shardFuncsLocked returns the load and unload of topic's coordinator,
// nil before it is installed.
// REQUIRES: cp.mu held.
func (cp *coordPlacement) shardFuncsLocked(topic string) (load func(int32, *partition, int32), unload func(int32)) {
	switch {
	case topic == offsetsTopic && cp.groups != nil:
		g := cp.groups
		return func(i int32, p *partition, _ int32) { g.Load(i, offsetsPartition{p}) }, g.Unload
	case topic == txnStateTopic && cp.txns != nil:
		c := cp.txns
		// The leader epoch is the coordinator epoch the markers
		// carry: a deposed coordinator's are fenced by it.
		return func(i int32, p *partition, epoch int32) { c.Load(i, offsetsPartition{p}, epoch) }, c.Unload
	}
	return nil, nil
}

// Settle waits until the high watermark covers the log end as it is now
// (coordinator.Settler): a new leader's high watermark reaches it once
// the followers in the ISR report it, or the ISR shrinks to them that
// have.
func (o offsetsPartition) Settle(ctx context.Context) error {
	if !o.p.waitHW(ctx, o.p.log.EndOffset()) {
		if err := ctx.Err(); err != nil {
			return err
		}
		return errors.New("broker: partition closed before its high watermark reached its log end")
	}
	return nil
}

// forget unloads the shard of tp, whose partition this broker no longer
// holds.
// REQUIRES: ps.reconcileMu held.
func (cp *coordPlacement) forget(tp topicPartition) {
	if !coordinatorTopic(tp.topic) {
		return
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if _, ok := cp.placed[tp]; !ok {
		return
	}
	if _, unload := cp.shardFuncsLocked(tp.topic); unload != nil {
		unload(tp.partition)
	}
	delete(cp.placed, tp)
}
