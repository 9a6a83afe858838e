package runnel

import (
	"context"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kadm"
)

// purgeTimeout bounds one DeleteRecords round trip; records a purge that
// timed out did not delete are purged at the next attempt.
const purgeTimeout = 5 * time.Second

// purger deletes the records of the repartition topics that the
// application has consumed and committed, as Kafka Streams does: nobody
// else reads them, so keeping them only costs disk (the topics have
// cleanup.policy=delete but the broker's retention is far longer than
// they are useful). The runner's goroutine decides what to purge; the
// DeleteRecords request runs on a goroutine of the purger's, one at a
// time, so that a slow broker never holds processing back.
type purger struct {
	last   time.Time       // when the last purge was sent
	topics map[string]bool // full names of the repartition topics; nil until first used
	wg     sync.WaitGroup  // the purge in flight

	mu    sync.Mutex                 // guards the following
	busy  bool                       // a purge is in flight
	below map[string]map[int32]int64 // per partition, the offset the last purge deleted below
}

// wait waits for the purge in flight, if any.
func (p *purger) wait() { p.wg.Wait() }

// maybePurge runs after a commit: once RepartitionPurgeInterval has passed
// since the last purge, it sends DeleteRecords for every repartition
// partition whose committed offset moved since, deleting below it. The
// committed offsets are the client's, which kgo updates only when a commit
// (or transaction) succeeded, so nothing not yet committed is deleted. A
// failed purge is logged and tried again at the next interval: purging is
// housekeeping, never a reason to stop processing.
func (r *runner) maybePurge(ctx context.Context, now time.Time) {
	p := &r.purge
	if p.topics == nil {
		// The first commit starts the clock:
		// the first purge comes one interval later.
		p.topics, p.below, p.last = map[string]bool{}, map[string]map[int32]int64{}, now
		for _, it := range r.parts.Internal {
			if it.Kind == topology.Repartition {
				p.topics[it.Name] = true
			}
		}
	}
	if now.Sub(p.last) < r.app.opts.RepartitionPurgeInterval || len(p.topics) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy {
		return // the last one is still in flight: try at the next commit
	}
	p.last = now
	offsets := kadm.Offsets{}
	for topic, parts := range r.cl.CommittedOffsets() {
		if !p.topics[topic] {
			continue
		}
		for part, eo := range parts {
			if eo.Offset > p.below[topic][part] {
				offsets.Add(kadm.Offset{Topic: topic, Partition: part, At: eo.Offset, LeaderEpoch: -1})
			}
		}
	}
	if len(offsets) == 0 {
		return
	}
	p.busy = true
	p.wg.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, purgeTimeout)
		defer cancel()
		resp, err := r.adm.DeleteRecords(ctx, offsets)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("stream: purge repartition topics", "err", err)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.busy = false
		resp.Each(func(d kadm.DeleteRecordsResponse) {
			if d.Err != nil {
				r.log.Warn("stream: purge repartition partition", "topic", d.Topic, "partition", d.Partition, "err", d.Err)
				return
			}
			at, _ := offsets.Lookup(d.Topic, d.Partition)
			if p.below[d.Topic] == nil {
				p.below[d.Topic] = map[int32]int64{}
			}
			p.below[d.Topic][d.Partition] = at.At
		})
	})
}
