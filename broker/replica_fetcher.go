package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Followers. A broker runs one fetcher per leader it follows partitions
// of; the fetcher owns a connection to that leader and, for each of its
// partitions, first truncates the local log to where it agrees with the
// leader's (OffsetForLeaderEpoch for the local log's newest epoch; KIP-101
// and KIP-279), then repeatedly fetches from its log end with the
// broker's replica id and the leader epoch, appends what comes back as
// is, waits for it to be durable (when the topic fsyncs before acking,
// so an acks=all acknowledgement means every ISR member has the batch on
// disk), and takes the leader's high watermark. The fetch offset tells
// the leader the follower's log end (replica_state.go).
//
// reconcile (partitions.go) assigns partitions to fetchers by their
// leader; a fetcher with no partitions stops. A partition whose fetch
// fails with a leadership error waits for newer metadata, which
// reassigns it.

// replicaFetchMaxWait is how long the leader holds a follower's fetch
// when it has nothing new (replica.fetch.wait.max.ms).
const replicaFetchMaxWait = 500 * time.Millisecond

// replicaFetchMaxBytes bounds one partition's data in a follower fetch
// (replica.fetch.max.bytes).
const replicaFetchMaxBytes = 1 << 20

// followState is one followed partition as its fetcher sees it.
type followState struct {
	epoch int32
	// truncated is set once the log was cut to agree with the leader at
	// epoch.
	truncated bool
	// retryAt, after an error, is when the fetcher tries the partition
	// again (metadata reassigning it resets the state sooner).
	retryAt time.Time
}

// fetchers assigns followed partitions to one fetcher per leader.
type fetchers struct {
	b *Broker

	mu sync.Mutex // guards m and closed
	m  map[int32]*fetcher
	// closed refuses new fetchers once the broker stops.
	closed bool

	wg sync.WaitGroup // every fetcher goroutine
}

func newFetchers(b *Broker) *fetchers {
	return &fetchers{b: b, m: make(map[int32]*fetcher)}
}

// follow makes tp fetched from leader at epoch (and from no other).
func (fs *fetchers) follow(tp topicPartition, leader, epoch int32) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed {
		return
	}
	for id, f := range fs.m {
		if id != leader {
			f.remove(tp)
		}
	}
	f := fs.m[leader]
	if f == nil || f.stopped() {
		f = &fetcher{fs: fs, leader: leader, parts: make(map[topicPartition]*followState), wake: make(chan struct{}, 1), stop: make(chan struct{})}
		fs.m[leader] = f
		fs.wg.Add(1)
		go func() { defer fs.wg.Done(); f.run() }()
	}
	f.add(tp, epoch)
}

// unfollow stops fetching tp.
func (fs *fetchers) unfollow(tp topicPartition) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, f := range fs.m {
		f.remove(tp)
	}
}

// close stops every fetcher and waits for them.
func (fs *fetchers) close() {
	fs.mu.Lock()
	fs.closed = true
	for _, f := range fs.m {
		f.halt()
	}
	fs.mu.Unlock()
	fs.wg.Wait()
}

// fetcher replicates the partitions this broker follows from one leader.
type fetcher struct {
	fs     *fetchers
	leader int32

	mu    sync.Mutex // guards parts
	parts map[topicPartition]*followState

	wake     chan struct{} // buffered 1: parts changed
	stop     chan struct{}
	stopOnce sync.Once
}

func (f *fetcher) add(tp topicPartition, epoch int32) {
	f.mu.Lock()
	st := f.parts[tp]
	if st == nil || st.epoch != epoch {
		f.parts[tp] = &followState{epoch: epoch}
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fetcher) remove(tp topicPartition) {
	f.mu.Lock()
	delete(f.parts, tp)
	empty := len(f.parts) == 0
	f.mu.Unlock()
	if empty {
		f.halt()
	}
}

func (f *fetcher) halt() { f.stopOnce.Do(func() { close(f.stop) }) }

func (f *fetcher) stopped() bool {
	select {
	case <-f.stop:
		return true
	default:
		return false
	}
}

// snapshot copies the partitions to fetch now.
func (f *fetcher) snapshot() map[topicPartition]followState {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[topicPartition]followState, len(f.parts))
	now := time.Now()
	for tp, st := range f.parts {
		if !now.Before(st.retryAt) {
			out[tp] = *st
		}
	}
	return out
}

// mark updates a partition's state if it is still followed at epoch.
func (f *fetcher) mark(tp topicPartition, epoch int32, fn func(*followState)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.parts[tp]; st != nil && st.epoch == epoch {
		fn(st)
	}
}

func (f *fetcher) run() {
	b := f.fs.b
	var pc *peerConn
	defer func() {
		if pc != nil {
			pc.close()
		}
	}()
	backoff := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-f.stop:
			return false
		case <-b.ctx.Done():
			return false
		case <-f.wake:
			return true
		case <-t.C:
			return true
		}
	}
	var lastRefusal string // the last inter-broker refusal logged
	for !f.stopped() && b.ctx.Err() == nil {
		parts := f.snapshot()
		if len(parts) == 0 {
			if !backoff(time.Second) {
				return
			}
			continue
		}
		if pc == nil {
			br, ok := b.meta.Cluster().Brokers[f.leader]
			if !ok {
				if !backoff(200 * time.Millisecond) {
					return
				}
				continue
			}
			var err error
			pc, err = b.dialInterBroker(b.ctx, net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port))))
			if err != nil {
				if errors.Is(err, errInterBrokerSecurity) {
					// Not a passing network fault: say it once, loudly.
					if msg := err.Error(); msg != lastRefusal {
						b.logger.Error("replica fetcher: the leader refuses this broker", "leader", f.leader, "err", err)
						lastRefusal = msg
					}
				}
				b.logger.Debug("replica fetcher: dial leader", "leader", f.leader, "err", err)
				if !backoff(200 * time.Millisecond) {
					return
				}
				continue
			}
		}
		err := f.truncate(pc, parts)
		if err == nil {
			err = f.fetch(pc, f.snapshot())
		}
		if err != nil {
			b.logger.Debug("replica fetcher", "leader", f.leader, "err", err)
			pc.close()
			pc = nil
			if !backoff(200 * time.Millisecond) {
				return
			}
		}
	}
}

// truncate cuts the logs of the partitions not yet truncated at their
// epoch to where they agree with the leader's.
func (f *fetcher) truncate(pc *peerConn, parts map[topicPartition]followState) error {
	b := f.fs.b
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.SetVersion(4)
	req.ReplicaID = b.cfg.NodeID
	asked := map[topicPartition]int32{}
	byTopic := map[string]int{}
	for tp, st := range parts {
		if st.truncated {
			continue
		}
		p := b.parts.get(tp.topic, tp.partition)
		if p == nil {
			continue
		}
		last := p.lastEpoch()
		if last < 0 {
			// Nothing written at any epoch: nothing to disagree on.
			f.mark(tp, st.epoch, func(s *followState) { s.truncated = true })
			continue
		}
		asked[tp] = last
		i, ok := byTopic[tp.topic]
		if !ok {
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = tp.topic
			req.Topics = append(req.Topics, rt)
			i = len(req.Topics) - 1
			byTopic[tp.topic] = i
		}
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition = tp.partition
		rp.CurrentLeaderEpoch = st.epoch
		rp.LeaderEpoch = last
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	if len(req.Topics) == 0 {
		return nil
	}
	kresp, err := pc.request(b.ctx, req, 10*time.Second)
	if err != nil {
		return err
	}
	resp := kresp.(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			tp := topicPartition{rt.Topic, rp.Partition}
			st, ok := parts[tp]
			if !ok {
				continue
			}
			if rp.ErrorCode != 0 {
				f.parkOnError(tp, st.epoch, rp.ErrorCode)
				continue
			}
			p := b.parts.get(tp.topic, tp.partition)
			if p == nil {
				continue
			}
			to := truncationPoint(p, asked[tp], rp.LeaderEpoch, rp.EndOffset)
			if to < p.log.EndOffset() {
				b.logger.Info("truncating follower log to the leader's epoch boundary", "topic", tp.topic, "partition", tp.partition, "from", p.log.EndOffset(), "to", to, "epoch", st.epoch)
				if err := b.parts.truncate(tp, p, to); err != nil {
					return fmt.Errorf("truncate %s-%d: %w", tp.topic, tp.partition, err)
				}
			}
			f.mark(tp, st.epoch, func(s *followState) { s.truncated = true })
		}
	}
	return nil
}

// truncationPoint is where a follower whose newest epoch is asked cuts
// its log, given the leader's answer (epoch, end) to OffsetForLeaderEpoch:
// at the leader's end of that epoch, or of the largest epoch both know
// when the leader's answer is an older epoch; at the follower's HW when
// the leader knows no epoch at or below it (KIP-279).
func truncationPoint(p *partition, asked, epoch int32, end int64) int64 {
	leo := p.log.EndOffset()
	if epoch < 0 || end < 0 {
		return min(p.highWatermark(), leo)
	}
	if epoch < asked {
		_, localEnd := p.log.EndOffsetForEpoch(epoch)
		if localEnd >= 0 {
			end = min(end, localEnd)
		}
	}
	return min(end, leo)
}

// parkOnError sets a partition aside after an error: a leadership error
// for a second (newer metadata normally reassigns it sooner, resetting
// its state), anything else for a moment.
func (f *fetcher) parkOnError(tp topicPartition, epoch int32, code int16) {
	f.fs.b.logger.Debug("replica fetcher: partition error", "topic", tp.topic, "partition", tp.partition, "err", kerr.ErrorForCode(code))
	pause := 200 * time.Millisecond
	switch code {
	case kerr.NotLeaderForPartition.Code, kerr.FencedLeaderEpoch.Code, kerr.UnknownLeaderEpoch.Code, kerr.UnknownTopicOrPartition.Code:
		pause = time.Second
	case kerr.TopicAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Code:
		// The leader's authorizer refuses this broker's principal
		// CLUSTER_ACTION: a configuration error an operator must see.
		f.fs.b.logger.Error("replica fetcher: the leader refuses this broker's replica fetches; make the inter-broker principal a super user or grant it CLUSTER_ACTION on the cluster",
			"leader", f.leader, "topic", tp.topic, "partition", tp.partition, "err", kerr.ErrorForCode(code))
		pause = 5 * time.Second
	}
	f.mark(tp, epoch, func(s *followState) { s.retryAt = time.Now().Add(pause) })
}

// fetch sends one replica fetch for the truncated partitions and applies
// the response.
func (f *fetcher) fetch(pc *peerConn, parts map[topicPartition]followState) error {
	b := f.fs.b
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID = b.cfg.NodeID
	req.MaxWaitMillis = int32(replicaFetchMaxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = 16 << 20
	req.SessionEpoch = -1
	type want struct {
		p     *partition
		epoch int32
	}
	wants := map[topicPartition]want{}
	byTopic := map[string]int{}
	// ft leaves out the partitions over this broker's follower
	// replication throttle (replication_throttle.go); nil when nothing
	// is throttled.
	ft := b.throttles.followerFetch()
	for tp, st := range parts {
		if !st.truncated {
			continue
		}
		p := b.parts.get(tp.topic, tp.partition)
		if p == nil || ft.hold(tp.topic, tp.partition) {
			continue
		}
		wants[tp] = want{p, st.epoch}
		i, ok := byTopic[tp.topic]
		if !ok {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = tp.topic
			req.Topics = append(req.Topics, rt)
			i = len(req.Topics) - 1
			byTopic[tp.topic] = i
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = tp.partition
		rp.CurrentLeaderEpoch = st.epoch
		rp.FetchOffset = p.log.EndOffset()
		rp.LastFetchedEpoch = -1
		rp.LogStartOffset = p.log.StartOffset()
		rp.PartitionMaxBytes = replicaFetchMaxBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	if len(wants) == 0 {
		// Every partition is parked or waiting: wait for a change.
		t := time.NewTimer(200 * time.Millisecond)
		defer t.Stop()
		select {
		case <-f.wake:
		case <-f.stop:
		case <-t.C:
		}
		return nil
	}
	kresp, err := pc.request(b.ctx, req, replicaFetchMaxWait+10*time.Second)
	if err != nil {
		return err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		return kerr.ErrorForCode(resp.ErrorCode)
	}
	// Append every partition's batches first, then make them durable
	// together (flushReplicas), then take the leader's HW and log start.
	var done []fetchedPart
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			tp := topicPartition{rt.Topic, rp.Partition}
			w, ok := wants[tp]
			if !ok {
				continue
			}
			if rp.ErrorCode == kerr.OffsetOutOfRange.Code && rp.LogStartOffset > w.p.log.EndOffset() {
				// The leader no longer has what follows this log's
				// end: start again, empty, at the leader's log start.
				b.logger.Warn("follower behind the leader's log start: emptying its log", "topic", tp.topic, "partition", tp.partition, "end", w.p.log.EndOffset(), "leader start", rp.LogStartOffset)
				if err := b.parts.reset(tp, w.p, rp.LogStartOffset); err != nil {
					return fmt.Errorf("reset %s-%d: %w", tp.topic, tp.partition, err)
				}
				continue
			}
			if rp.ErrorCode != 0 {
				if rp.ErrorCode == kerr.OffsetOutOfRange.Code {
					b.logger.Warn("replica fetcher: offset out of range at the leader", "topic", tp.topic, "partition", tp.partition, "offset", w.p.log.EndOffset())
				}
				f.parkOnError(tp, w.epoch, rp.ErrorCode)
				continue
			}
			a := fetchedPart{tp: tp, p: w.p, hw: rp.HighWatermark, logStart: rp.LogStartOffset}
			if len(rp.RecordBatches) > 0 {
				end, err := w.p.appendReplica(rp.RecordBatches, w.epoch)
				if err != nil {
					if errors.Is(err, errNotLeader) {
						continue // metadata moved on meanwhile
					}
					// Diverged or broken: truncate again before the
					// next fetch.
					b.logger.Warn("replica fetcher: append", "topic", tp.topic, "partition", tp.partition, "err", err)
					f.mark(tp, w.epoch, func(s *followState) { s.truncated = false })
					continue
				}
				if w.p.durableAcks() {
					a.flushTo = end
				}
				ft.count(tp.topic, tp.partition, len(rp.RecordBatches))
			}
			done = append(done, a)
		}
	}
	ft.record()
	flushStart := time.Now()
	if err := flushReplicas(done); err != nil {
		return err
	}
	if d := time.Since(flushStart); d >= slowAckWait {
		// Every acks=all produce to these partitions waited for it.
		b.logger.Warn("replica fetcher: slow fsync", "leader", f.leader, "partitions", len(done), "took", d.Round(time.Millisecond))
	}
	for _, a := range done {
		a.p.followerHW(a.hw)
		// The leader's log start moves by DeleteRecords (and its
		// retention): records deleted there are deleted here, so a
		// later leader does not bring them back.
		if start := min(a.logStart, a.p.log.EndOffset()); start > a.p.log.StartOffset() {
			if err := a.p.log.SetStartOffset(start); err != nil {
				b.logger.Warn("replica fetcher: log start", "topic", a.tp.topic, "partition", a.tp.partition, "err", err)
			}
		}
	}
	return nil
}

// fetchedPart is a partition of a replica fetch response, appended.
type fetchedPart struct {
	tp topicPartition
	p  *partition
	// hw and logStart are the leader's, from the response.
	hw, logStart int64
	// flushTo, when above 0, is the log end the follower must make
	// durable before it fetches again (its next fetch offset tells the
	// leader it has the batches, which an acks=all answer relies on).
	flushTo int64
}

// flushReplicas makes the partitions' appended batches durable, each
// log's fsync in its own goroutine when there are several: a follower
// round then costs one fsync, not one per partition, before the next
// fetch reports the new log ends to the leader.
func flushReplicas(parts []fetchedPart) error {
	var todo []fetchedPart
	for _, a := range parts {
		if a.flushTo > 0 {
			todo = append(todo, a)
		}
	}
	switch len(todo) {
	case 0:
		return nil
	case 1:
		return todo[0].p.log.WaitFlushed(todo[0].flushTo)
	}
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, a := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = a.p.log.WaitFlushed(a.flushTo)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// durableAcks reports whether the topic fsyncs before acknowledging.
func (p *partition) durableAcks() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.durable
}

// peerConn is a broker's Kafka-protocol connection to another broker, for
// replica fetches: one request at a time.
type peerConn struct {
	nc       net.Conn
	r        *bufio.Reader
	corr     int32
	clientID string
	// expires is when the connection's SASL session is to be renewed by
	// reconnecting (interbroker_security.go); zero for never.
	expires time.Time
}

// errPeerSessionExpired ends a connection whose SASL session is about to
// end: the caller dials again, which authenticates again.
var errPeerSessionExpired = errors.New("broker: inter-broker SASL session expired")

func dialPeer(ctx context.Context, dial DialFunc, addr string, self int32) (*peerConn, error) {
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return &peerConn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), clientID: "runnel-replica-" + strconv.Itoa(int(self))}, nil
}

func (c *peerConn) close() { c.nc.Close() }

// request sends req and reads its response, within timeout.
func (c *peerConn) request(ctx context.Context, req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	if !c.expires.IsZero() && time.Now().After(c.expires) {
		return nil, errPeerSessionExpired
	}
	c.corr++
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.nc.SetDeadline(deadline)
	// A caller that cuts the request short when ctx ends (by setting a
	// past deadline) must not have it overwritten by the one above.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	flexible := req.IsFlexible()
	buf := make([]byte, 4, 256)
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.Key()))
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.GetVersion()))
	buf = binary.BigEndian.AppendUint32(buf, uint32(c.corr))
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(c.clientID)))
	buf = append(buf, c.clientID...)
	if flexible {
		buf = append(buf, 0) // no tagged fields
	}
	buf = req.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	if _, err := c.nc.Write(buf); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > maxPeerResponseSize {
		return nil, fmt.Errorf("broker: peer response of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return nil, err
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != c.corr {
		return nil, fmt.Errorf("broker: peer answered correlation id %d, want %d", corr, c.corr)
	}
	body = body[4:]
	if flexible {
		rest, err := skipTags(body)
		if err != nil {
			return nil, err
		}
		body = rest
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("broker: decode peer %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// maxPeerResponseSize bounds one response a follower reads from its
// leader: well above the fetch's own byte limits, it only stops a corrupt
// length from allocating gigabytes.
const maxPeerResponseSize = 100 << 20
