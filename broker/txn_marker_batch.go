package broker

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/txn"
)

// Transaction markers for other brokers go out batched by destination,
// as Kafka's TransactionMarkerChannelManager sends them: the markers the
// coordinator writes (one per partition of every completing transaction,
// each from its own goroutine) queue per leader broker, and one sender per
// broker drains its queue into one WriteTxnMarkers request at a time,
// carrying every queued marker of every transaction. While a request is
// in flight the next batch gathers, so a busy coordinator sends a request
// per broker per round trip rather than one per partition per
// transaction.
//
//	writeTxnMarker ──┐            queue[broker 2] ── sender ── WriteTxnMarkers ──▶ broker 2
//	writeTxnMarker ──┼─ enqueue ─▶
//	writeTxnMarker ──┘            queue[broker 3] ── sender ── WriteTxnMarkers ──▶ broker 3
//
// A sender runs while its queue is not empty and exits when it is; the
// batcher owns the senders and waits for them on close.

// markerBatcher queues markers per destination broker and sends them in
// batches.
type markerBatcher struct {
	// send writes a batch of markers on broker node in one request and
	// returns each one's error, in order.
	send func(ctx context.Context, node int32, ms []txn.Marker) []error

	// ctx ends on close: an in-flight request is cut short.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the senders

	mu sync.Mutex // guards the following
	// queues holds the markers waiting for each broker's sender; a
	// broker has an entry only while its sender runs.
	queues map[int32][]*queuedMarker
	closed bool
}

// queuedMarker is one marker waiting to be sent, and its caller.
type queuedMarker struct {
	ctx  context.Context // the caller's: a marker it gave up on is not sent
	m    txn.Marker
	done chan error // buffered: the sender never waits for the caller
}

func newMarkerBatcher(send func(ctx context.Context, node int32, ms []txn.Marker) []error) *markerBatcher {
	ctx, cancel := context.WithCancel(context.Background())
	return &markerBatcher{send: send, ctx: ctx, cancel: cancel, queues: make(map[int32][]*queuedMarker)}
}

// write queues m for broker node and waits for its outcome, or for ctx.
func (mb *markerBatcher) write(ctx context.Context, node int32, m txn.Marker) error {
	q := &queuedMarker{ctx: ctx, m: m, done: make(chan error, 1)}
	mb.mu.Lock()
	if mb.closed {
		mb.mu.Unlock()
		return errPeerClosed
	}
	queue, running := mb.queues[node]
	mb.queues[node] = append(queue, q)
	if !running {
		mb.wg.Add(1)
		go func() { defer mb.wg.Done(); mb.run(node) }()
	}
	mb.mu.Unlock()
	select {
	case err := <-q.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is broker node's sender: it sends what is queued, one request at a
// time, until the queue is empty.
func (mb *markerBatcher) run(node int32) {
	for {
		mb.mu.Lock()
		batch := mb.queues[node]
		if len(batch) == 0 {
			delete(mb.queues, node)
			mb.mu.Unlock()
			return
		}
		mb.queues[node] = batch[:0:0]
		mb.mu.Unlock()

		live := make([]*queuedMarker, 0, len(batch))
		ms := make([]txn.Marker, 0, len(batch))
		for _, q := range batch {
			if q.ctx.Err() == nil {
				live = append(live, q)
				ms = append(ms, q.m)
			}
		}
		if len(ms) == 0 {
			continue
		}
		errs := mb.send(mb.ctx, node, ms)
		for i, q := range live {
			q.done <- errs[i]
		}
	}
}

// close stops taking markers and waits for the senders, whose requests
// end at once.
func (mb *markerBatcher) close() {
	mb.mu.Lock()
	mb.closed = true
	mb.mu.Unlock()
	mb.cancel()
	mb.wg.Wait()
}

// markerKey identifies a marker's partition within one request: a
// producer has at most one transaction completing at a time.
type markerKey struct {
	pid       int64
	topic     string
	partition int32
}

// txnKey groups the markers of one transaction into one entry of the
// request.
type txnKey struct {
	pid              int64
	epoch            int16
	commit           bool
	coordinatorEpoch int32
	tv2              bool
}

// sendTxnMarkers writes markers on another broker's partitions in one
// WriteTxnMarkers request, the markers of each transaction in one entry.
// An UNKNOWN_TOPIC_OR_PARTITION for a partition this broker's metadata no
// longer has either is success: the partition was deleted.
func (b *Broker) sendTxnMarkers(ctx context.Context, node int32, ms []txn.Marker) []error {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = writeTxnMarkersVersion
	entries := map[txnKey]int{}
	for _, m := range ms {
		k := txnKey{m.ProducerID, m.ProducerEpoch, m.Commit, m.CoordinatorEpoch, m.TV2}
		i, ok := entries[k]
		if !ok {
			i = len(req.Markers)
			entries[k] = i
			rm := kmsg.NewWriteTxnMarkersRequestMarker()
			rm.ProducerID, rm.ProducerEpoch, rm.Committed, rm.CoordinatorEpoch = m.ProducerID, m.ProducerEpoch, m.Commit, m.CoordinatorEpoch
			if m.TV2 {
				rm.TransactionVersion = 2
			}
			req.Markers = append(req.Markers, rm)
		}
		rm := &req.Markers[i]
		j := len(rm.Topics)
		for t := range rm.Topics {
			if rm.Topics[t].Topic == m.Topic {
				j = t
			}
		}
		if j == len(rm.Topics) {
			rt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			rt.Topic = m.Topic
			rm.Topics = append(rm.Topics, rt)
		}
		rm.Topics[j].Partitions = append(rm.Topics[j].Partitions, m.Partition)
	}
	errs := make([]error, len(ms))
	resp, err := b.peers.request(ctx, node, req)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	codes := map[markerKey]int16{}
	for _, rm := range resp.(*kmsg.WriteTxnMarkersResponse).Markers {
		for _, rt := range rm.Topics {
			for _, rp := range rt.Partitions {
				codes[markerKey{rm.ProducerID, rt.Topic, rp.Partition}] = rp.ErrorCode
			}
		}
	}
	for i, m := range ms {
		code, ok := codes[markerKey{m.ProducerID, m.Topic, m.Partition}]
		switch {
		case !ok:
			errs[i] = fmt.Errorf("broker: marker for %s-%d on broker %d: no answer", m.Topic, m.Partition, node)
		case code == 0:
		case code == kerr.UnknownTopicOrPartition.Code && !b.partitionExists(m.Topic, m.Partition):
		default:
			errs[i] = fmt.Errorf("broker: marker for %s-%d on broker %d: %w", m.Topic, m.Partition, node, kerr.ErrorForCode(code))
		}
	}
	return errs
}
