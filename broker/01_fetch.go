package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/log"
	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// Fetch v4-v18 (v13+ names topics by id). A fetch long-polls until MinBytes
// are available below the high watermark, MaxWait (capped at FetchMaxWait)
// passes, a partition has an error, or its connection closes. Each partition returns whole batches starting with the one
// that contains the fetch offset, within PartitionMaxBytes, and the response
// within MaxBytes, except that the first partition with data returns at
// least one batch however large (KIP-74).
//
// Zero-copy. The records are not read into memory: the log returns where
// they lie in its segment files and the connection's writer sends them
// with sendfile, the response encoded around them (fetch_zerocopy.go).
// Connections without sendfile, and responses with tagged fields, copy.
//
// Memory. The records of a response (file regions, or bytes where it
// copies) are held from the log read until the response is written, and
// charged to the broker-wide fetch budget
// (queued.max.response.bytes, fetch_budget.go) meanwhile: a fetch reads
// only as many bytes as the budget has free, and with less than one
// batch's worth free it waits for room as it waits for data.
//
// Not here yet: incremental fetch sessions (KIP-227) — the broker answers
// every fetch in full with session id 0, which every client treats as
// "sessions unavailable" — and fetching from followers (KIP-392): only the
// leader serves fetches, others answer NOT_LEADER_OR_FOLLOWER.
//
// Follower fetches (a replica id >= 0) read up to the log end rather than
// the high watermark, tell the leader the follower's log end (the fetch
// offset; see replica_state.go), and long-poll for new data rather than
// for the high watermark, which moves only once followers have fetched.
//
// Isolation. read_uncommitted reads below the high watermark and gets no
// aborted-transactions list (null). read_committed reads below the last
// stable offset (the first offset of the earliest open transaction) and
// gets the aborted transactions that overlap the returned batches
// (producer id, first offset), with which the client drops aborted
// records; control batches are returned as stored, and clients skip them.
// Every response carries both the high watermark and the LSO.
//
// With an authorizer, a consumer needs READ on each topic and a follower
// CLUSTER_ACTION on the cluster; a denied partition gets
// TOPIC_AUTHORIZATION_FAILED (every partition, for a follower), as
// Kafka's.

func init() { register(1, 4, 18, handleFetch) }

// fetchMaxBytes caps a response whatever the client asks for (Kafka's
// fetch.max.bytes default), bounding the memory one fetch can pin.
const fetchMaxBytes = 55 << 20

// fetchPart is one requested partition, resolved.
type fetchPart struct {
	p        *partition
	offset   int64
	maxBytes int32
	epoch    int32 // CurrentLeaderEpoch, -1 when not given
	errCode  int16
	ti, pi   int // position in the response
}

func handleFetch(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.FetchRequest)
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	b := c.b
	if r.Version >= 7 && r.SessionID != 0 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return respond(resp)
	}
	var cl *meta.Cluster
	if r.Version >= 13 {
		cl = b.meta.Cluster()
	}
	replica := fetchReplicaID(r)
	replicaDenied := replica >= 0 && !c.allowedCluster(kmsg.ACLOperationClusterAction)
	// lt holds back throttled partitions from a follower outside their
	// ISR (replication_throttle.go); nil when nothing is throttled.
	var lt *replicaFetchThrottle
	if replica >= 0 {
		lt = b.throttles.leaderFetch(replica)
	}
	var parts []fetchPart
	// Each fetched partition learns where this connection has read to,
	// for the page cache drop-behind (read_marks.go).
	// Direct writes need them too: a partition with readers is written
	// through the page cache.
	dropBehind := !b.cfg.DisableCacheDropBehind
	track := dropBehind || !b.cfg.DisableDirectWrites
	var now int64
	if track {
		now = time.Now().UnixNano()
	}
	for ti, rt := range r.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		name := rt.Topic
		unknown := kerr.UnknownTopicOrPartition.Code
		if r.Version >= 13 {
			unknown = kerr.UnknownTopicID.Code
			name = ""
			if t := cl.TopicsByID[rt.TopicID]; t != nil {
				name = t.Name
			}
		}
		denied := replicaDenied || replica < 0 && name != "" && !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, name)
		for pi, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark = -1
			sp.LastStableOffset = -1
			sp.LogStartOffset = -1
			st.Partitions = append(st.Partitions, sp)
			fp := fetchPart{offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, epoch: rp.CurrentLeaderEpoch, ti: ti, pi: pi}
			if r.Version < 9 {
				fp.epoch = -1
			}
			if denied {
				fp.errCode = kerr.TopicAuthorizationFailed.Code
			} else if fp.p = b.parts.get(name, rp.Partition); fp.p == nil {
				fp.errCode = unknown
			} else if fp.errCode = fp.p.fetchCheck(replica, rp.FetchOffset, fp.epoch); fp.errCode != 0 {
				fp.p = nil
			} else if track {
				fp.p.noteRead(c.id, rp.FetchOffset, now, dropBehind)
			}
			parts = append(parts, fp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	readCommitted := r.IsolationLevel == 1
	// A wait past FetchMaxWait is cut to it, so a forgotten long poll
	// cannot hold its connection for weeks.
	maxWait := min(time.Duration(r.MaxWaitMillis)*time.Millisecond, b.cfg.FetchMaxWait)
	// zc, when set, has the records sent from the segment files
	// (fetch_zerocopy.go).
	zc := newZeroCopyFetch(c, resp)
	fin := func(ctx context.Context) kmsg.Response {
		if ctx.Err() != nil {
			// The connection is gone: read nothing for nobody.
			return resp
		}
		// The throttled bytes of the response as answered count
		// towards the leader's replication rate.
		defer lt.record()
		deadline := time.Now().Add(maxWait)
		wake := make(chan struct{}, 1)
		for _, fp := range parts {
			if fp.p == nil {
				continue
			}
			if replica >= 0 {
				fp.p.watchLEO(wake)
				defer fp.p.unwatchLEO(wake)
			} else {
				fp.p.watch(wake)
				defer fp.p.unwatch(wake)
			}
		}
		want := r.MaxBytes
		if want <= 0 || want > fetchMaxBytes {
			want = fetchMaxBytes
		}
		// queued: waiting in the budget's queue for room, keeping its
		// place across passes until it gets room or answers.
		queued := false
		defer func() {
			if queued {
				b.fetchBytes.unwatch(wake)
			}
		}()
		for {
			// Each pass reads anew: give back what the last one held,
			// then take what is free (queued.max.response.bytes). The
			// writer gives back the last charge once it has written
			// the response.
			//
			// A follower's fetch is not charged: replication must not
			// wait behind slow consumers, or the ISR would shrink under
			// client load (Kafka keeps replication outside client
			// limits too). Followers are few and each asks for at most
			// replica.fetch.max.bytes, so what they hold stays bounded.
			b.fetchBytes.release(c.respCharge)
			reserved := int64(want)
			if replica < 0 {
				reserved = b.fetchBytes.reserveFor(int64(want), wake)
				if reserved > 0 {
					queued = false // served: out of the queue
				}
			}
			total, failed := fillFetch(b, resp, zc, parts, readCommitted, replica >= 0 || replica == debuggingConsumer, int32(min(int64(want), reserved)), lt)
			if replica < 0 {
				c.respCharge = b.fetchBytes.settle(reserved, int64(total))
			} else {
				c.respCharge = 0
			}
			if failed || total >= int(r.MinBytes) || r.MinBytes <= 0 {
				return resp
			}
			if reserved == 0 && !queued {
				// Too little budget to read a batch, or others wait
				// for it first: queue for room as for data, and answer
				// empty at the deadline.
				b.fetchBytes.watch(wake)
				queued = true
			}
			wait := time.Until(deadline)
			if wait <= 0 {
				return resp
			}
			t := time.NewTimer(wait)
			select {
			case <-wake:
				t.Stop()
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return resp
			}
		}
	}
	if zc == nil {
		return fin, nil
	}
	return zc.finisher(fin), nil
}

// fillFetch reads every partition into the response, within maxBytes but
// for the first batch (KIP-74), and returns the bytes read and whether any
// partition failed. With maxBytes 0 (no budget) it reads no records, only
// the partitions' offsets and errors. With zc set the records are left in
// their files as regions, the last pass's given back first. lt, for a
// follower's fetch, holds back the partitions over the leader's
// replication throttle and counts the throttled bytes read.
func fillFetch(b *Broker, resp *kmsg.FetchResponse, zc *zeroCopyFetch, parts []fetchPart, readCommitted, replica bool, maxBytes int32, lt *replicaFetchThrottle) (int, bool) {
	zc.release()
	lt.reset()
	remaining := maxBytes
	total := 0
	failed := false
	for _, fp := range parts {
		sp := &resp.Topics[fp.ti].Partitions[fp.pi]
		// An empty record set, never a null one: librdkafka (kcat -e,
		// confluent-kafka) takes a null set for a parse failure and
		// never sees the end of the partition.
		sp.RecordBatches = []byte{}
		sp.ErrorCode = fp.errCode
		if fp.errCode != 0 {
			failed = true
			continue
		}
		p := fp.p
		hw := p.highWatermark()
		lso := p.lastStableOffset()
		sp.HighWatermark = hw
		sp.LastStableOffset = lso
		sp.LogStartOffset = p.log.StartOffset()
		if readCommitted {
			sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		}
		if epoch := p.epoch(); fp.epoch >= 0 && fp.epoch != epoch {
			sp.ErrorCode = kerr.FencedLeaderEpoch.Code
			if fp.epoch > epoch {
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			}
			failed = true
			continue
		}
		if lt.hold(p.topic, p.index) {
			// Over the leader's replication throttle: the follower
			// hears the offsets, and gets the records later.
			continue
		}
		limit := min(fp.maxBytes, remaining)
		if maxBytes <= 0 || (total > 0 && limit <= 0) {
			continue
		}
		if total == 0 {
			// KIP-74: the first data returned may exceed the limits so a
			// consumer never gets stuck behind a batch bigger than its
			// fetch size; log.Read returns at least one whole batch.
			limit = max(limit, 1)
		}
		upTo := hw
		switch {
		case replica:
			upTo = p.log.EndOffset()
		case readCommitted:
			upTo = lso
		}
		rr, err := zc.read(p, fp.offset, limit, upTo)
		if err != nil && !errors.Is(err, log.ErrOffsetOutOfRange) && fp.offset < p.log.StartOffset() {
			// The segment holding the offset went (retention,
			// DeleteRecords) while it was read: the offset is now below
			// the log start, which is what the client must hear.
			err = log.ErrOffsetOutOfRange
		}
		if err != nil {
			sp.ErrorCode = errorCode(err)
			if !errors.Is(err, log.ErrOffsetOutOfRange) {
				b.logger.Error("fetch read", "topic", p.topic, "partition", p.index, "offset", fp.offset, "err", err)
			}
			failed = true
			continue
		}
		sp.LogStartOffset = rr.LogStartOffset
		if total > 0 && rr.size() > int(limit) {
			// Only the first partition with data may exceed the
			// limits; this one's first batch does not fit.
			rr.region.Release()
			continue
		}
		if n := rr.size(); n > 0 {
			if rr.region == nil {
				sp.RecordBatches = rr.Records
			}
			zc.keep(fp.ti, fp.pi, &rr)
			if readCommitted {
				sp.AbortedTransactions = abortedList(p.log.AbortedTxns(fp.offset, rr.next()))
			}
			total += n
			remaining -= int32(n)
			lt.count(p.topic, p.index, n)
			b.metrics.bytesOut.WithLabelValues(p.topic).Add(float64(n))
			b.metrics.recordsOut.WithLabelValues(p.topic).Add(float64(rr.count()))
		}
	}
	return total, failed
}

// countRecords adds up the record counts in the headers of a run of whole
// batches (bytes 57-60 of each), for the records-out metric.
func countRecords(batches []byte) int64 {
	var n int64
	for len(batches) >= 61 {
		size := int(binary.BigEndian.Uint32(batches[8:])) + 12
		if size < 61 || size > len(batches) {
			break
		}
		n += int64(int32(binary.BigEndian.Uint32(batches[57:])))
		batches = batches[size:]
	}
	return n
}

// nextOffset is the offset after the last batch of a run of whole
// batches: the end of the range a fetch returned.
func nextOffset(batches []byte) int64 {
	next := int64(-1)
	for len(batches) >= 61 {
		size := int(binary.BigEndian.Uint32(batches[8:])) + 12
		if size < 61 || size > len(batches) {
			break
		}
		next = int64(binary.BigEndian.Uint64(batches)) + int64(int32(binary.BigEndian.Uint32(batches[23:]))) + 1
		batches = batches[size:]
	}
	return next
}

// abortedList converts the log's aborted transactions to the response's
// (never nil: read_committed responses carry a list, empty or not).
func abortedList(txns []log.AbortedTxn) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	out := make([]kmsg.FetchResponseTopicPartitionAbortedTransaction, len(txns))
	for i, t := range txns {
		out[i] = kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		out[i].ProducerID = t.ProducerID
		out[i].FirstOffset = t.FirstOffset
	}
	return out
}
