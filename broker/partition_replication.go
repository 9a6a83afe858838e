package broker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// The partition's replication methods: the only code that touches
// partition.rs, partition.leading and partition.leader. See
// replica_state.go for the state machine and its invariants.

// errNotLeader refuses a write (or a leader-only read) on a partition
// this broker does not lead at the current epoch.
var errNotLeader = errors.New("broker: not the leader of the partition")

// role applies the partition's metadata: it becomes leader at a new
// leader epoch (starting the epoch at its log end, so OffsetForLeaderEpoch
// answers it), stays leader and takes a newer committed ISR, or becomes a
// follower of mp.Leader (-1: no leader). Waiters are woken on any change,
// so produces waiting for acknowledgement see a lost leadership.
func (p *partition) role(mp meta.Partition, self int32, minISR int, lagMax time.Duration, now time.Time) error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.minISR = minISR
	p.replicated = len(mp.Replicas) > 1
	if mp.LeaderEpoch < p.leaderEpoch {
		return nil // an older view; epochs only grow
	}
	if mp.Leader == self {
		if p.leading && p.leaderEpoch == mp.LeaderEpoch {
			p.rs.applyMetadata(mp.PartitionEpoch, mp.Replicas, mp.ISR)
			p.setHWLocked(p.rs.highWatermark())
			p.wakeAllLocked()
			return nil
		}
		p.mu.Unlock()
		err := p.log.AssignEpoch(mp.LeaderEpoch)
		p.mu.Lock()
		if err != nil {
			return err
		}
		p.leaderEpoch = mp.LeaderEpoch
		p.leading = true
		p.leader = self
		p.rs = newReplicaState(self, mp.LeaderEpoch, mp.PartitionEpoch, mp.Replicas, mp.ISR, p.durableEnd, p.hw, lagMax, now)
		p.setHWLocked(p.rs.highWatermark())
		p.wakeAllLocked()
		return nil
	}
	if !p.leading && p.leaderEpoch == mp.LeaderEpoch && p.leader == mp.Leader {
		return nil
	}
	p.leaderEpoch = mp.LeaderEpoch
	p.leading = false
	p.leader = mp.Leader
	p.rs = nil
	p.wakeAllLocked()
	return nil
}

// wakeAllLocked wakes every waiter, of the HW and of the log end.
// REQUIRES: p.mu held.
func (p *partition) wakeAllLocked() {
	for _, m := range []map[chan struct{}]struct{}{p.waiters, p.leoWaiters, p.fetchWaiters} {
		for ch := range m {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// localDurable records that the local log is durable up to end: it
// wakes acks=1 produces and followers' long polls (which an append
// woke already when it went through appendChecked), and on a leader
// moves the HW.
func (p *partition) localDurable(end int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if end > p.durableEnd {
		p.durableEnd = end
		// Followers' long polls too: appends that do not go through
		// appendChecked (transaction markers) wake them here.
		for _, m := range []map[chan struct{}]struct{}{p.leoWaiters, p.fetchWaiters} {
			for ch := range m {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}
	if p.rs != nil {
		p.rs.localAppended(p.durableEnd)
		p.setHWLocked(p.rs.highWatermark())
	}
}

// followerFetched records a follower's fetch at offset (its log end) and
// moves the HW when it can.
func (p *partition) followerFetched(replica int32, offset int64, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rs == nil {
		return
	}
	p.rs.fetched(replica, offset, now)
	p.setHWLocked(p.rs.highWatermark())
}

// isLeader reports whether this broker leads the partition now.
func (p *partition) isLeader() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leading
}

// isrChange returns the AlterPartition this leader should send now, if
// any; the caller must report the outcome with isrChangeDone.
func (p *partition) isrChange(now time.Time) (meta.PartitionChange, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rs == nil {
		return meta.PartitionChange{}, false
	}
	isr, ok := p.rs.isrChange(now)
	if !ok {
		return meta.PartitionChange{}, false
	}
	return meta.PartitionChange{
		Topic:          p.topic,
		TopicID:        p.topicID,
		Index:          p.index,
		Leader:         p.rs.self,
		LeaderEpoch:    p.rs.leaderEpoch,
		PartitionEpoch: p.rs.partitionEpoch,
		ISR:            isr,
	}, true
}

// isrChangeDone takes the controller's answer to an AlterPartition: the
// partition as applied, or an error (the change is forgotten and tried
// again if still due; a lost leadership arrives through metadata).
func (p *partition) isrChangeDone(ch meta.PartitionChange, np meta.Partition, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rs == nil || p.rs.leaderEpoch != ch.LeaderEpoch {
		return
	}
	if err != nil {
		p.rs.isrChangeFailed()
		return
	}
	p.rs.applyMetadata(np.PartitionEpoch, np.Replicas, np.ISR)
	p.setHWLocked(p.rs.highWatermark())
	p.wakeAllLocked()
}

// produceCheck is the check before a produce appends: the leader only
// (NOT_LEADER_OR_FOLLOWER), and for acks=all an ISR of at least
// min.insync.replicas (NOT_ENOUGH_REPLICAS).
func (p *partition) produceCheck(acks int16) int16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.leading {
		return kerr.NotLeaderForPartition.Code
	}
	if acks == -1 && p.rs.inSync() < p.minISR {
		return kerr.NotEnoughReplicas.Code
	}
	return 0
}

// waitAcked waits until a produce that appended below end may be
// acknowledged: for acks=1 once the leader's own log has it (durably
// when the topic fsyncs), for acks=all once the HW covers it, and then
// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR has shrunk below
// min.insync.replicas. A leadership lost meanwhile is
// NOT_LEADER_OR_FOLLOWER (the client retries; an idempotent producer's
// retry is not written twice); ctx ending is REQUEST_TIMED_OUT.
func (p *partition) waitAcked(ctx context.Context, end int64, acks int16) int16 {
	ch := make(chan struct{}, 1)
	p.mu.Lock()
	p.waiters[ch] = struct{}{}
	p.leoWaiters[ch] = struct{}{}
	epoch := p.leaderEpoch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.waiters, ch)
		delete(p.leoWaiters, ch)
		p.mu.Unlock()
	}()
	for {
		p.mu.Lock()
		leading, sameEpoch := p.leading, p.leaderEpoch == epoch
		var code int16 = -1
		switch {
		case !leading || !sameEpoch:
			code = kerr.NotLeaderForPartition.Code
		case acks == 1 && p.durableEnd >= end:
			code = 0
		case acks != 1 && p.hw >= end:
			code = 0
			if p.rs.inSync() < p.minISR {
				code = kerr.NotEnoughReplicasAfterAppend.Code
			}
		}
		p.mu.Unlock()
		if code >= 0 {
			return code
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return kerr.RequestTimedOut.Code
		case <-p.stop:
			return kerr.NotLeaderForPartition.Code
		}
	}
}

// ackReady reports whether waitAcked(end, acks) would return at once:
// the acknowledgement is due, or the leadership is lost. It never blocks.
func (p *partition) ackReady(end int64, acks int16) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case !p.leading:
		return true
	case acks == 1:
		return p.durableEnd >= end
	default:
		return p.hw >= end
	}
}

// watchLEO registers a follower's long poll, ch, to be signalled when
// the log end moves: it waits for new data, not for the HW, which moves
// only after followers fetch. It is woken by the append itself, not by
// the leader's fsync after it, so that the followers write and fsync the
// batch while the leader does: an acks=all produce then waits for the
// slowest of the leader's and the followers' fsyncs, not for their sum.
// The HW still counts the leader's own log only up to what it has made
// durable (localDurable), and a follower's fetch offset only once the
// follower has (replica_fetcher.go).
func (p *partition) watchLEO(ch chan struct{}) {
	p.mu.Lock()
	p.fetchWaiters[ch] = struct{}{}
	p.mu.Unlock()
}

func (p *partition) unwatchLEO(ch chan struct{}) {
	p.mu.Lock()
	delete(p.fetchWaiters, ch)
	p.mu.Unlock()
}

// wakeFetchers signals the followers' long polls after an append.
func (p *partition) wakeFetchers() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ch := range p.fetchWaiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// appendReplica writes batches fetched from the leader at leaderEpoch,
// if this broker still follows at that epoch.
func (p *partition) appendReplica(batches []byte, leaderEpoch int32) (int64, error) {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	p.mu.Lock()
	ok := !p.leading && p.leaderEpoch == leaderEpoch
	p.mu.Unlock()
	if !ok {
		return 0, errNotLeader
	}
	p.writeDirect() // a follower's copy is seldom fetched: usually direct
	end, err := p.log.AppendReplica(batches)
	if err != nil {
		return end, err
	}
	p.nudge()
	return end, nil
}

// followerHW moves a follower's HW to the leader's, capped by its own log
// end.
func (p *partition) followerHW(leaderHW int64) {
	end := p.log.EndOffset()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leading {
		return
	}
	p.setHWLocked(min(leaderHW, end))
}

// following reports the leader and epoch a follower follows.
func (p *partition) following() (leader, epoch int32, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leader, p.leaderEpoch, !p.leading && p.leader >= 0
}

// lastEpoch is the newest leader epoch in the local log's history, -1
// when it has none.
func (p *partition) lastEpoch() int32 {
	e := p.log.Epochs()
	if len(e) == 0 {
		return -1
	}
	return e[len(e)-1].Epoch
}

// isrLoop sends the ISR changes leaders want to the controller, one pass
// every interval (a quarter of replica.lag.time.max.ms, at most 100ms).
func (b *Broker) isrLoop() {
	t := time.NewTicker(min(b.cfg.ReplicaLagTimeMax/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range b.parts.all() {
			ch, ok := p.isrChange(time.Now())
			if !ok {
				continue
			}
			before := p.committedISR()
			ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
			np, err := b.meta.AlterPartition(ctx, ch)
			cancel()
			if err != nil {
				b.logger.Info("ISR change refused", "topic", ch.Topic, "partition", ch.Index, "isr", ch.ISR, "err", err)
			} else {
				b.metrics.isrChanges.observe(before, ch.ISR)
				if !slices.Equal(np.ISR, ch.ISR) {
					b.logger.Info("ISR changed", "topic", ch.Topic, "partition", ch.Index, "isr", np.ISR)
				}
			}
			p.isrChangeDone(ch, np, err)
		}
	}
}

// heartbeatLoop tells the controller this broker is alive every
// broker.heartbeat.interval.ms (only in a cluster).
func (b *Broker) heartbeatLoop() {
	t := time.NewTicker(b.cfg.BrokerHeartbeatInterval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(b.ctx, b.cfg.BrokerHeartbeatInterval*2)
		err := b.meta.Heartbeat(ctx, b.cfg.NodeID)
		cancel()
		if err != nil && b.ctx.Err() == nil {
			b.logger.Debug("heartbeat", "err", err)
			if errors.Is(err, meta.ErrUnknownBroker) {
				b.register(b.ctx)
			}
		}
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// fetchReplicaID is the replica id of a fetch: a follower's broker id, or
// -1 for a consumer.
func fetchReplicaID(r *kmsg.FetchRequest) int32 {
	if r.Version >= 15 {
		return r.ReplicaState.ID
	}
	return r.ReplicaID
}

// debuggingConsumer is the replica id of Kafka's debugging consumer: any
// replica serves its Fetch from its own copy, up to its log end, so a
// tool can compare the replicas' logs.
const debuggingConsumer = -2

// fetchCheck admits a fetch: only the leader serves one, but for the
// debugging consumer's. A follower's fetch at offset, at the current
// leader epoch, records its progress (a fetch at another epoch is
// refused by the epoch check later).
func (p *partition) fetchCheck(replica int32, offset int64, epoch int32) int16 {
	if !p.isLeader() && replica != debuggingConsumer {
		return kerr.NotLeaderForPartition.Code
	}
	if replica >= 0 && (epoch < 0 || epoch == p.epoch()) {
		p.followerFetched(replica, offset, time.Now())
	}
	return 0
}

// hwCheckpointFile holds a replicated partition's high watermark, so a
// restarted broker serves what was committed before it stopped without
// waiting for its followers (Kafka's replication-offset-checkpoint, one
// file per partition here). It is written every
// hwCheckpointInterval and when the partition closes; a stale one only
// makes the high watermark start lower.
const hwCheckpointFile = "high-watermark"

// hwCheckpointInterval is replica.high.watermark.checkpoint.interval.ms.
const hwCheckpointInterval = 5 * time.Second

// checkpointHW writes the high watermark if it moved since the last
// checkpoint.
func (p *partition) checkpointHW() error {
	p.mu.Lock()
	hw, done, replicated := p.hw, p.hwCheckpointed, p.replicated
	p.mu.Unlock()
	if hw == done || !replicated {
		return nil
	}
	if err := writeFileSync(filepath.Join(p.log.Dir(), hwCheckpointFile), []byte(strconv.FormatInt(hw, 10)+"\n")); err != nil {
		return err
	}
	p.mu.Lock()
	p.hwCheckpointed = max(p.hwCheckpointed, hw)
	p.mu.Unlock()
	return nil
}

// readHWCheckpoint returns the checkpointed high watermark in dir, or -1.
func readHWCheckpoint(dir string) int64 {
	raw, err := os.ReadFile(filepath.Join(dir, hwCheckpointFile))
	if err != nil {
		return -1
	}
	hw, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil || hw < 0 {
		return -1
	}
	return hw
}

// hwCheckpointLoop checkpoints every partition's high watermark every
// hwCheckpointInterval.
func (b *Broker) hwCheckpointLoop() {
	t := time.NewTicker(hwCheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range b.parts.all() {
			if err := p.checkpointHW(); err != nil && b.ctx.Err() == nil {
				b.logger.Debug("high watermark checkpoint", "topic", p.topic, "partition", p.index, "err", err)
			}
		}
	}
}
