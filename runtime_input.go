package runnel

// This file holds what a worker knows of its input partitions beyond the
// tasks' queues (runtime_queue.go): the offsets it commits, which are
// those of the records processed, not of the records polled; where to
// rewind after an aborted transaction; the positions a task starts from;
// and the pausing of partitions whose queues are full.
//
// The client's own idea of what is committed cannot serve: it takes the
// polled offsets as committed after every transaction
// (GroupTransactSession.End), and rewinds to them after an abort, past
// records still queued. So the worker commits explicit offsets (and
// rewrites the transaction's TxnOffsetCommit to carry them), keeps its
// own committed offsets (committedAt), and after an abort sets the
// consumer back to them itself.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchedFrom records where partition (topic, part) stands committed when
// it is first fetched from since it was assigned: at its first record
// (the consumer started at the committed offset, or the log start, and
// nothing lies between). REQUIRES: r.taskMu held.
func (r *runner) fetchedFrom(topic string, part int32, first *kgo.Record) {
	tp := topicPartition{topic, part}
	if _, ok := r.committedAt[tp]; !ok {
		r.committedAt[tp] = kgo.EpochOffset{Epoch: -1, Offset: first.Offset}
	}
}

// processedOffsets returns the offsets to commit: for each source
// partition whose tasks processed past its committed offset, the offset
// after the last record processed. A partition read by several
// sub-topologies commits the smallest of their tasks' positions, and only
// once each of them runs and processed some of it. REQUIRES: r.taskMu held.
func (r *runner) processedOffsets() map[string]map[int32]kgo.EpochOffset {
	type position struct {
		at    kgo.EpochOffset
		tasks int // tasks reading the partition that processed from it
	}
	var pos map[topicPartition]*position
	for k, t := range r.tasks {
		for _, p := range t.in.parts {
			if !p.taken {
				continue
			}
			if pos == nil {
				pos = map[topicPartition]*position{}
			}
			tp := topicPartition{p.topic, k.part}
			cur := pos[tp]
			if cur == nil {
				cur = &position{at: p.done}
				pos[tp] = cur
			} else if p.done.Offset < cur.at.Offset {
				cur.at = p.done
			}
			cur.tasks++
		}
	}
	var out map[string]map[int32]kgo.EpochOffset
	for tp, cur := range pos {
		if cur.tasks < len(r.routes[tp.topic]) {
			continue // a task reading it is not running, or processed none of it
		}
		if c, ok := r.committedAt[tp]; ok && c.Offset == cur.at.Offset {
			continue
		}
		if out == nil {
			out = map[string]map[int32]kgo.EpochOffset{}
		}
		if out[tp.topic] == nil {
			out[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		out[tp.topic][tp.partition] = cur.at
	}
	return out
}

// committedOffsets records offsets as committed. REQUIRES: r.taskMu held.
func (r *runner) committedOffsets(offsets map[string]map[int32]kgo.EpochOffset) {
	for topic, ps := range offsets {
		for part, o := range ps {
			r.committedAt[topicPartition{topic, part}] = o
		}
	}
}

// txnOffsets returns the PreTxnCommitFnContext hook making a transaction
// commit offsets rather than what the consumer polled. A partition keeps
// the topic id the client gave it, if any (the request's version depends
// on it).
func txnOffsets(offsets map[string]map[int32]kgo.EpochOffset) func(*kmsg.TxnOffsetCommitRequest) error {
	return func(req *kmsg.TxnOffsetCommitRequest) error {
		ids := map[string][16]byte{}
		for _, t := range req.Topics {
			ids[t.Topic] = t.TopicID
		}
		req.Topics = req.Topics[:0]
		for topic, ps := range offsets {
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic, rt.TopicID = topic, ids[topic]
			for part, o := range ps {
				rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch = part, o.Offset, o.Epoch
				rp.Metadata = &req.MemberID
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		return nil
	}
}

// rewindInputs sets the consumer back to the committed offsets after an
// aborted transaction (the session set it to what it believes committed:
// the polled offsets of the last transaction), and drops the records the
// tasks had queued: they come again. REQUIRES: r.taskMu held.
func (r *runner) rewindInputs() {
	set := map[string]map[int32]kgo.EpochOffset{}
	for _, k := range r.owned {
		for topic, ps := range r.partitionsOf(k) {
			for _, p := range ps {
				if o, ok := r.committedAt[topicPartition{topic, p}]; ok {
					if set[topic] == nil {
						set[topic] = map[int32]kgo.EpochOffset{}
					}
					set[topic][p] = o
				}
			}
		}
	}
	r.cl.SetOffsets(set)
	for k, t := range r.tasks {
		t.in.clear()
		for _, p := range t.in.parts {
			if o, ok := set[p.topic][k.part]; ok {
				t.in.rewound(p.topic, o.Offset)
			}
		}
	}
	// Paused because their queues were full: the queues are empty.
	r.applyBackpressure()
}

// forgetInputs forgets where the partitions of task k stand committed:
// they were revoked or lost, and another member may commit them now.
// REQUIRES: r.taskMu held.
func (r *runner) forgetInputs(k taskKey) {
	for topic, ps := range r.partitionsOf(k) {
		for _, p := range ps {
			delete(r.committedAt, topicPartition{topic, p})
		}
	}
}

// listInputsTimeout bounds the listing of a task's input positions.
const listInputsTimeout = 5 * time.Second

// listInputs tells a task reading several partitions where each stands
// when it starts: the group's committed offset (or the log start) and the
// end, so that a partition already at its end holds the others from the
// first poll on, and one behind holds them until its records come. A
// failed listing leaves them unknown: the task then holds for at most
// maxHoldBehind, until fetches tell. REQUIRES: r.taskMu held.
func (r *runner) listInputs(t *runTask) {
	if len(t.in.parts) < 2 {
		return
	}
	var topics []string
	for _, p := range t.in.parts {
		topics = append(topics, p.topic)
	}
	ctx, cancel := context.WithTimeout(context.Background(), listInputsTimeout)
	defer cancel()
	// Under exactly-once the input ends at the last stable offset.
	list := r.adm.ListEndOffsets
	if r.sess != nil {
		list = r.adm.ListCommittedOffsets
	}
	ends, err := list(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		r.log.Debug("stream: list input end offsets", "task", t.key, "err", err)
		return
	}
	starts, err := r.adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		r.log.Debug("stream: list input start offsets", "task", t.key, "err", err)
		return
	}
	committed, err := r.adm.FetchOffsetsForTopics(ctx, r.app.opts.ApplicationID, topics...)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		r.log.Debug("stream: fetch committed offsets", "task", t.key, "err", err)
		return
	}
	for _, topic := range topics {
		end, ok1 := ends.Lookup(topic, t.key.part)
		start, ok2 := starts.Lookup(topic, t.key.part)
		if !ok1 || !ok2 {
			continue
		}
		pos := start.Offset
		if c, ok := committed.Lookup(topic, t.key.part); ok && c.At >= 0 {
			pos = max(c.At, start.Offset) // below the start: reset there
		}
		t.in.listed(topic, pos, end.Offset)
	}
}

// applyBackpressure pauses fetching the partitions whose queue holds
// maxQueuedPerPartition records or more, and resumes those it paused once
// their queue is down to half (Kafka Streams' buffered.records.per.partition):
// a partition far ahead of the one its task waits for does not fill the
// memory. A partition read by several tasks counts its longest queue.
// REQUIRES: r.taskMu held.
func (r *runner) applyBackpressure() {
	var queued map[topicPartition]int
	for k, t := range r.tasks {
		for _, p := range t.in.parts {
			tp := topicPartition{p.topic, k.part}
			if n := len(p.queued); n >= maxQueuedPerPartition || r.throttled[tp] {
				if queued == nil {
					queued = map[topicPartition]int{}
				}
				queued[tp] = max(queued[tp], n)
			}
		}
	}
	var pause, resume map[string][]int32
	for tp, n := range queued {
		switch {
		case n >= maxQueuedPerPartition && !r.throttled[tp]:
			r.throttled[tp] = true
			pause = addPartition(pause, tp)
		case n <= maxQueuedPerPartition/2 && r.throttled[tp]:
			delete(r.throttled, tp)
			resume = addPartition(resume, tp)
		}
	}
	if pause != nil {
		r.cl.PauseFetchPartitions(pause)
	}
	if resume != nil {
		r.cl.ResumeFetchPartitions(resume)
	}
}

func addPartition(m map[string][]int32, tp topicPartition) map[string][]int32 {
	if m == nil {
		m = map[string][]int32{}
	}
	m[tp.topic] = append(m[tp.topic], tp.partition)
	return m
}
