package runnel

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A task that reads several partitions (a join of co-partitioned topics,
// a merge) processes their records in timestamp order, as Kafka Streams'
// PartitionGroup does: each fetched record waits in its partition's
// queue, across polls and commits, and the next record processed is the
// earliest head among the queues. A poll hands over what the fetches
// happened to bring, often one partition far ahead of another (up to a
// fetch's worth of bytes per partition), so ordering each poll alone
// would process, say, clicks before the user updates the next poll brings.
//
// An empty queue holds the others back while its partition may have
// earlier records to come: while its lag (the end its fetches or a
// listing reported minus its position) is above zero, or unknown. A
// partition known to be at its end holds them back only MaxTaskIdle
// (Kafka Streams' max.task.idle.ms, default 0: not at all). Holding for a
// partition behind is bounded too (maxHoldBehind), so a partition whose
// fetches fail or that stays paused delays its task, never stops it; past
// the bound the partition counts as at its end until a fetch tells of it
// again.
//
// The queues also keep, per partition, the position after the last record
// taken: the offset the worker commits (see runner.processedOffsets).
// Records still queued at a commit stay queued; the consumer group's
// committed offset stays before them, so a new owner, or this worker after
// an aborted transaction, reads them again.
type inputQueues struct {
	parts     []*inputPartition // one per source topic, in the sub-topology's order
	holdSince time.Time         // when an empty queue began to hold the others; zero: none does
}

// inputPartition is one source partition of a task.
type inputPartition struct {
	topic  string
	queued []*kgo.Record // fetched and not yet processed, in offset order
	// pos is the offset after the last record fetched, or the position
	// listed when the task started; end is the offset the partition may
	// be read to (the high watermark, or the last stable offset under
	// read_committed), as of its last fetch. -1: unknown.
	pos, end int64
	// done is the position after the last record taken; taken says
	// whether any was since the task started.
	done  kgo.EpochOffset
	taken bool
	// last is the timestamp of the last record taken (ms), when taken.
	last int64
	// gaveUp is set when the partition held the others back as long as
	// it may, and cleared when a fetch or a listing tells its position:
	// meanwhile it is taken as at its end, so that a partition whose
	// position stays unknown (its listing failed, and it has nothing to
	// fetch) does not hold every later record back again.
	gaveUp bool
	// recycle says the records go back to the client's pool once
	// processed: no other task holds them (see runtime_fetchpool.go).
	recycle bool
}

// maxHoldBehind bounds how long an empty queue whose partition is behind
// (or not yet known) holds the others back. Kafka Streams waits for such
// a partition without bound; a fetch normally comes within a poll or two,
// so the bound only matters when the partition cannot be fetched.
const maxHoldBehind = 5 * time.Second

// maxQueuedPerPartition is how many records a partition's queue holds
// before the worker pauses fetching it (Kafka Streams'
// buffered.records.per.partition); it resumes once half are processed.
const maxQueuedPerPartition = 1000

func newInputQueues(topics []string, recycle func(topic string) bool) *inputQueues {
	q := &inputQueues{}
	for _, t := range topics {
		q.parts = append(q.parts, &inputPartition{topic: t, pos: -1, end: -1, recycle: recycle(t)})
	}
	return q
}

// len returns the number of records queued.
func (q *inputQueues) len() int {
	n := 0
	for _, p := range q.parts {
		n += len(p.queued)
	}
	return n
}

// topics returns the task's source topics.
func (q *inputQueues) topics() []string {
	out := make([]string, len(q.parts))
	for i, p := range q.parts {
		out[i] = p.topic
	}
	return out
}

// part returns the queue of topic's partition, or nil.
func (q *inputQueues) part(topic string) *inputPartition {
	for _, p := range q.parts {
		if p.topic == topic {
			return p
		}
	}
	return nil
}

// fetched takes a partition's fetch: its records, end (see
// inputPartition.end) and the log start offset. A fetch without records
// moves nothing but the end: the partition may be at its end, or the
// response may have run out of bytes before it. It tells that a partition
// whose position is unknown is at its end only when the partition is
// empty (end == logStart).
func (q *inputQueues) fetched(topic string, recs []*kgo.Record, end, logStart int64) {
	p := q.part(topic)
	if p == nil {
		return
	}
	p.end = end
	if n := len(recs); n > 0 {
		p.queued = append(p.queued, recs...)
		p.pos = recs[n-1].Offset + 1
	} else if p.pos < 0 && end == logStart {
		p.pos = end
	}
	if p.pos >= 0 {
		p.gaveUp = false
	}
}

// listed sets a partition's position and end from a listing made when the
// task started, unless a fetch told them already.
func (q *inputQueues) listed(topic string, pos, end int64) {
	if p := q.part(topic); p != nil && p.pos < 0 && p.end < 0 {
		p.pos, p.end, p.gaveUp = pos, end, false
	}
}

// behind reports whether the partition may have records to fetch: its lag
// is above zero or unknown.
func (p *inputPartition) behind() bool {
	return !p.gaveUp && (p.pos < 0 || p.end < 0 || p.end > p.pos)
}

// next takes the next record to process, or reports that none may be
// processed now: the queues are empty, an empty one holds the others, or
// the next record's timestamp is past limit (ms; see runtime_align.go).
// Control records (transaction markers) are taken on the way, moving the
// position, and never returned. idle is MaxTaskIdle, behind maxHoldBehind
// (or a test's).
func (q *inputQueues) next(now time.Time, idle, behind time.Duration, limit int64) (*kgo.Record, *inputPartition, bool) {
	var best *inputPartition
	var hold time.Duration
	for _, p := range q.parts {
		p.skipControl()
		if len(p.queued) == 0 {
			if p.behind() {
				hold = max(hold, behind, idle)
			} else {
				hold = max(hold, idle)
			}
			continue
		}
		if best == nil || p.queued[0].Timestamp.Before(best.queued[0].Timestamp) {
			best = p
		}
	}
	if best == nil {
		q.holdSince = time.Time{}
		return nil, nil, false
	}
	if best.queued[0].Timestamp.UnixMilli() > limit {
		return nil, nil, false
	}
	if hold == 0 {
		q.holdSince = time.Time{}
	} else {
		if q.holdSince.IsZero() {
			q.holdSince = now
		}
		if now.Sub(q.holdSince) < hold {
			return nil, nil, false
		}
		// Held long enough: go on in timestamp order among the queues
		// that have records, and stop waiting for the empty ones until
		// they are heard of.
		for _, p := range q.parts {
			if len(p.queued) == 0 && p.behind() {
				p.gaveUp = true
			}
		}
	}
	return best.take(), best, true
}

// frontier returns the earliest timestamp (ms) the task may still
// process (see runtime_align.go), and whether it is that of a partition
// with nothing queued; ok is false when every queue is empty and its
// partition at its end. Control records at the heads are taken.
func (q *inputQueues) frontier() (ts int64, empty, ok bool) {
	for _, p := range q.parts {
		p.skipControl()
		var pts int64
		switch {
		case len(p.queued) > 0:
			pts = p.queued[0].Timestamp.UnixMilli()
		case !p.behind():
			continue
		case p.taken:
			pts = p.last
		default:
			pts = math.MinInt64 // nothing fetched yet: may be anything
		}
		if !ok || pts < ts || (pts == ts && len(p.queued) == 0) {
			ts, empty, ok = pts, len(p.queued) == 0, true
		}
	}
	return ts, empty, ok
}

// giveUpEmpty stops waiting for the partitions with nothing queued that
// may have records to fetch, until a fetch or a listing tells of them.
func (q *inputQueues) giveUpEmpty() {
	for _, p := range q.parts {
		if len(p.queued) == 0 && p.behind() {
			p.gaveUp = true
		}
	}
}

// skipControl takes the control records at the head of the queue.
func (p *inputPartition) skipControl() {
	for len(p.queued) > 0 && p.queued[0].Attrs.IsControl() {
		rec := p.take()
		if p.recycle {
			rec.Recycle()
		}
	}
}

// take removes the head of the queue and moves the position past it.
func (p *inputPartition) take() *kgo.Record {
	rec := p.queued[0]
	p.queued[0] = nil // the queue's array outlives the record
	if len(p.queued) == 1 {
		p.queued = p.queued[:0] // reuse the array
	} else {
		p.queued = p.queued[1:]
	}
	p.done = kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset + 1}
	p.taken = true
	p.last = rec.Timestamp.UnixMilli()
	return rec
}

// clear drops every queued record: they are read again, the consumer being
// rewound. The positions are unknown until rewound says them. The records
// are not put back in the pool: a deserialization handler may hold one.
func (q *inputQueues) clear() {
	for _, p := range q.parts {
		clear(p.queued)
		p.queued = p.queued[:0]
		p.pos = -1
	}
	q.holdSince = time.Time{}
}

// rewound sets the position of topic's partition, whose consumer was set
// back to offset.
func (q *inputQueues) rewound(topic string, offset int64) {
	if p := q.part(topic); p != nil {
		p.pos, p.gaveUp = offset, false
	}
}

// holding reports whether an empty queue held the others back at the last
// next call.
func (q *inputQueues) holding() bool { return !q.holdSince.IsZero() }
