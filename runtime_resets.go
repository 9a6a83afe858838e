package runnel

// This file reports input records lost to retention. When a task's
// position in an input partition falls below the partition's log start
// (retention or DeleteRecords removed records the application had not
// read yet, while it was down or too slow), the client resets the position
// to the log start, as auto.offset.reset=earliest does, and says nothing
// the application sees: the records in between are gone without notice.
// Kafka Streams logs such a reset; the runtime logs it at WARN and counts
// it (runnel_stream_offset_resets_total).
//
// franz-go handles OFFSET_OUT_OF_RANGE inside the client: it lists the log
// start and resumes there, with no hook or error in the fetches for this
// case (only ErrDataLoss, for a log truncated below the position). So the
// runtime checks what it can see itself: each fetched partition carries its
// log start offset, and the runtime knows where the task's position was,
// the offset after the last record it fetched or, before its first fetch,
// the group's committed offset.

import (
	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// offsetReset is a position found below its partition's log start.
type offsetReset struct {
	was     int64 // the task's position: the next offset it would have read
	resumed int64 // the first offset fetched after the reset
}

// findReset reports whether the fetched partition p shows that the
// position was, from which the task read p, fell below p's log start, and
// where reading resumed. The first record fetched is where it resumed; a
// fetch with no records resumed at the log start, or later. Positions
// moving back (an aborted transaction rewinds to the committed offsets)
// are not resets.
func findReset(was int64, p kgo.FetchTopicPartition) (offsetReset, bool) {
	if was < 0 || p.LogStartOffset <= was {
		return offsetReset{}, false
	}
	resumed := p.LogStartOffset
	if len(p.Records) > 0 {
		resumed = p.Records[0].Offset
	}
	if resumed <= was {
		return offsetReset{}, false
	}
	return offsetReset{was: was, resumed: resumed}, true
}

// checkReset reports a reset of task t's position in the fetched
// partition p. It runs before the fetch moves the task's position (see
// updateLag). Loop goroutine only.
func (r *runner) checkReset(t *runTask, p kgo.FetchTopicPartition) {
	was, ok := t.m.next[p.Topic]
	if !ok {
		if len(p.Records) == 0 {
			// Nothing fetched yet: check when the first records come,
			// which a committed offset below the log start delays
			// until new records arrive.
			return
		}
		o, ok := r.cl.CommittedOffsets()[p.Topic][p.Partition]
		if !ok {
			return // nothing committed: reading starts at the log start anyway
		}
		was = o.Offset
	}
	reset, ok := findReset(was, p)
	if !ok {
		return
	}
	id := t.task.ID()
	r.log.Warn("stream: input position below the log start; records deleted before they were processed are skipped",
		"task", id.String(), "topic", p.Topic, "partition", p.Partition,
		"position", reset.was, "resumed_at", reset.resumed, "records_skipped", reset.resumed-reset.was)
	r.app.metrics.offsetReset(id, p.Topic)
}

// offsetReset counts a position reset to the log start.
func (m *appMetrics) offsetReset(id topology.TaskID, topic string) {
	m.prom.offsetResets.WithLabelValues(id.String(), topic).Inc()
}
