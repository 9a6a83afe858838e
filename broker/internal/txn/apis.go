package txn

import (
	"context"
	"math"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxEpoch is the last epoch a producer id is bumped to; the next bump
// moves to a new producer id (Kafka keeps Short.MaxValue free).
const maxEpoch = math.MaxInt16 - 1

// durable waits for a write, bounded as a produce request is; a failure
// is COORDINATOR_NOT_AVAILABLE, which sends the client to find the
// coordinator again.
func durable(ctx context.Context, wait func(context.Context) error) int16 {
	if wait == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := wait(ctx); err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	return 0
}

// FencedCode is PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH for request
// versions before firstFenced, which predate KIP-588's code for it.
func FencedCode(version, firstFenced int16) int16 {
	if version < firstFenced {
		return kerr.InvalidProducerEpoch.Code
	}
	return kerr.ProducerFenced.Code
}

// InitProducerID allocates a producer id. Without a transactional id the
// id is new with epoch 0. With one, the id's producer epoch is bumped,
// fencing any older producer; an open transaction is aborted first, and
// the answer waits for its markers. A producer recovering with its
// current id and epoch (KIP-360) gets a bump too; an epoch at its limit
// moves to a new producer id.
func (c *Coordinator) InitProducerID(ctx context.Context, req *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID == nil {
		id, err := c.allocateID(ctx)
		if err != nil {
			c.log.Error("allocate producer id", "err", err)
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
		resp.ProducerID, resp.ProducerEpoch = id, 0
		return resp
	}
	id := *req.TransactionalID
	timeout := time.Duration(req.TransactionTimeoutMillis) * time.Millisecond
	switch {
	case id == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	case timeout <= 0 || timeout > c.cfg.MaxTimeout:
		resp.ErrorCode = kerr.InvalidTransactionTimeout.Code
		return resp
	}
	reqPid, reqEpoch := int64(-1), int16(-1)
	if req.Version >= 3 {
		reqPid, reqEpoch = req.ProducerID, req.ProducerEpoch
	}
	resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = c.initTxn(ctx, id, timeout, reqPid, reqEpoch, req.Version)
	if resp.ErrorCode != 0 {
		resp.ProducerID, resp.ProducerEpoch = -1, -1
	}
	return resp
}

func (c *Coordinator) initTxn(ctx context.Context, id string, timeout time.Duration, reqPid int64, reqEpoch int16, version int16) (int16, int64, int16) {
	for {
		s, code := c.lookup(id)
		if code != 0 {
			return code, -1, -1
		}
		m := s.txns[id]
		if m == nil {
			pid, err := c.allocateID(ctx)
			if err != nil {
				s.Unlock()
				c.log.Error("allocate producer id", "err", err)
				return kerr.CoordinatorNotAvailable.Code, -1, -1
			}
			m = newMeta(id, pid, timeout, c.clock.Now())
			s.txns[id] = m
			wait, err := s.storeLocked(m)
			s.Unlock()
			if err != nil {
				return kerr.CoordinatorNotAvailable.Code, -1, -1
			}
			return durable(ctx, wait), pid, 0
		}
		if reqPid >= 0 {
			current := reqPid == m.pid && (reqEpoch == m.epoch || reqEpoch == m.lastEpoch)
			rotated := reqPid == m.lastPid && m.lastPid >= 0
			if !current && !rotated {
				s.Unlock()
				return FencedCode(version, 4), -1, -1
			}
		}
		switch {
		case m.done != nil:
			// Markers are being written; wait for them.
		case m.state == Ongoing:
			c.log.Info("aborting the open transaction of a new producer", "transactional_id", id, "producer_id", m.pid, "epoch", m.epoch)
			s.fenceAndAbortLocked(m)
		default:
			if m.epoch >= maxEpoch {
				pid, err := c.allocateID(ctx)
				if err != nil {
					s.Unlock()
					return kerr.CoordinatorNotAvailable.Code, -1, -1
				}
				m.lastPid, m.pid, m.lastEpoch, m.epoch = m.pid, pid, -1, 0
			} else {
				m.lastEpoch = m.epoch
				m.epoch++
			}
			m.timeout = timeout
			m.state = Empty
			m.parts = make(map[TopicPartition]struct{})
			m.start = time.Time{}
			pid, epoch := m.pid, m.epoch
			wait, err := s.storeLocked(m)
			s.Unlock()
			if err != nil {
				return kerr.CoordinatorNotAvailable.Code, -1, -1
			}
			return durable(ctx, wait), pid, epoch
		}
		done := m.done
		s.Unlock()
		if !waitDone(ctx, done) {
			return kerr.ConcurrentTransactions.Code, -1, -1
		}
		// The transaction is complete; bump from where it left the id.
		// The fence took the epoch the producer knows, so accept it as
		// the previous one.
		if reqPid >= 0 {
			reqPid, reqEpoch = -1, -1
		}
	}
}

// waitDone waits for a completion, bounded well below client request
// timeouts so the client gets CONCURRENT_TRANSACTIONS and retries rather
// than timing out.
func waitDone(ctx context.Context, done <-chan struct{}) bool {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// fenceAndAbortLocked aborts m's open transaction on the coordinator's
// own account (timeout, or a new producer): the epoch is bumped first, so
// the producer that opened it is fenced, and the markers carry the new
// epoch.
//
// REQUIRES: s locked, m.state == Ongoing.
func (s *shard) fenceAndAbortLocked(m *txnMeta) {
	if m.epoch < math.MaxInt16 {
		m.lastEpoch = m.epoch
		m.epoch++
	}
	m.state = PrepareAbort
	wait, err := s.storeLocked(m)
	if err != nil {
		// Not durable: the abort is decided again on the next check
		// or after a restart.
		m.state = Ongoing
		return
	}
	s.completeLocked(m, wait)
}

// completeLocked writes m's markers in the background, once the prepare
// record is durable (after waitPrepare), then stores the completed state.
// A coordinator that closes meanwhile leaves the transaction prepared;
// loading finishes it.
//
// REQUIRES: s locked, m.state preparing.
func (s *shard) completeLocked(m *txnMeta, waitPrepare func(context.Context) error) {
	c := s.c
	done := make(chan struct{})
	m.done = done
	commit := m.state == PrepareCommit
	markers := make([]Marker, 0, len(m.parts))
	for _, tp := range m.sortedPartitions() {
		markers = append(markers, Marker{TopicPartition: tp, ProducerID: m.pid, ProducerEpoch: m.epoch, Commit: commit, CoordinatorEpoch: s.Epoch(), TV2: m.tv == 2})
	}
	// The shard's context ends when it is unloaded (or the coordinator
	// closes): the markers stop, and the transaction stays prepared for
	// the next load.
	ctx := s.Context()
	c.rt.Go(func() {
		if waitPrepare != nil {
			if err := waitPrepare(ctx); err != nil {
				if ctx.Err() == nil {
					c.log.Error("transaction decision not durable", "transactional_id", m.id, "err", err)
				}
				return
			}
		}
		if !c.writeMarkers(ctx, markers) {
			return
		}
		s.Lock()
		defer s.Unlock()
		if !s.ServingLocked() {
			return
		}
		m.state = CompleteAbort
		if commit {
			m.state = CompleteCommit
		}
		if m.nextPid >= 0 {
			m.lastPid, m.pid, m.nextPid, m.lastEpoch, m.epoch = m.pid, m.nextPid, -1, -1, 0
		}
		m.parts = make(map[TopicPartition]struct{})
		m.start = time.Time{}
		m.done = nil
		close(done)
		if _, err := s.storeLocked(m); err != nil {
			// The next load sees it prepared and writes the markers
			// again, which partitions take as duplicates.
			c.log.Error("store completed transaction", "transactional_id", m.id, "err", err)
		}
	})
}

// writeMarkers writes every marker, in parallel, retrying each until it
// is durable. It reports false when ctx ended first.
func (c *Coordinator) writeMarkers(ctx context.Context, markers []Marker) bool {
	errs := make(chan error, len(markers))
	for _, mk := range markers {
		go func() {
			backoff := 10 * time.Millisecond
			for {
				err := c.cfg.WriteMarker(ctx, mk)
				if err == nil || ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				c.log.Warn("write transaction marker", "topic", mk.Topic, "partition", mk.Partition, "producer_id", mk.ProducerID, "err", err)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
				backoff = min(2*backoff, time.Second)
			}
		}()
	}
	ok := true
	for range markers {
		if <-errs != nil {
			ok = false
		}
	}
	return ok
}

// checkLocked validates a producer's id and epoch against the
// transaction, and that no commit or abort is completing.
//
// REQUIRES: s locked.
func checkLocked(m *txnMeta, pid int64, epoch int16, fenced int16) int16 {
	switch {
	case m == nil || m.pid != pid:
		return kerr.InvalidProducerIDMapping.Code
	case epoch != m.epoch:
		return fenced
	case m.done != nil || m.state.preparing():
		return kerr.ConcurrentTransactions.Code
	case m.state == Dead:
		return kerr.InvalidTxnState.Code
	}
	return 0
}

// addLocked adds partitions to m's transaction, opening one if none is,
// and returns the wait for the write, or nil when nothing changed.
//
// REQUIRES: s locked, checkLocked passed.
func (s *shard) addLocked(m *txnMeta, tps []TopicPartition) (func(context.Context) error, error) {
	if m.state == Ongoing && !slices.ContainsFunc(tps, func(tp TopicPartition) bool { _, ok := m.parts[tp]; return !ok }) {
		return nil, nil
	}
	if m.state != Ongoing {
		m.state = Ongoing
		m.start = s.c.clock.Now()
		m.parts = make(map[TopicPartition]struct{})
	}
	for _, tp := range tps {
		m.parts[tp] = struct{}{}
	}
	return s.storeLocked(m)
}

// AddPartitions adds partitions to a producer's transaction
// (AddPartitionsToTxn v0-v3, and AddOffsetsToTxn with the group's
// __consumer_offsets partition). It returns a code for the request, or
// per-partition codes when some partitions do not exist (the others get
// OPERATION_NOT_ATTEMPTED, as in Kafka). The request is answered once the
// change is durable.
func (c *Coordinator) AddPartitions(ctx context.Context, id string, pid int64, epoch int16, fenced int16, tps []TopicPartition) (int16, map[TopicPartition]int16) {
	var unknown map[TopicPartition]int16
	for _, tp := range tps {
		if !c.cfg.PartitionExists(tp.Topic, tp.Partition) {
			if unknown == nil {
				unknown = make(map[TopicPartition]int16)
			}
			unknown[tp] = kerr.UnknownTopicOrPartition.Code
		}
	}
	if unknown != nil {
		for _, tp := range tps {
			if _, ok := unknown[tp]; !ok {
				unknown[tp] = kerr.OperationNotAttempted.Code
			}
		}
		return 0, unknown
	}
	s, code := c.lookup(id)
	if code != 0 {
		return code, nil
	}
	m := s.txns[id]
	if code := checkLocked(m, pid, epoch, fenced); code != 0 {
		s.Unlock()
		return code, nil
	}
	wait, err := s.addLocked(m, tps)
	s.Unlock()
	if err != nil {
		return kerr.CoordinatorNotAvailable.Code, nil
	}
	return durable(ctx, wait), nil
}

// VerifyPartition checks that a transactional producer may write to a
// partition (KIP-890): its producer id and epoch are the transaction's
// current ones, no commit or abort is completing, and the partition is in
// the transaction — added now when add is set (Produce v12+ adds
// partitions implicitly), INVALID_TXN_STATE otherwise. It returns nil or
// a *kerr.Error that answers the produce: INVALID_PRODUCER_EPOCH for a
// fenced producer (the produce path's code for it),
// INVALID_PRODUCER_ID_MAPPING, CONCURRENT_TRANSACTIONS, INVALID_TXN_STATE,
// or a coordinator error. It blocks until an addition is durable or ctx
// ends.
func (c *Coordinator) VerifyPartition(ctx context.Context, txnID string, pid int64, epoch int16, topic string, partition int32, add bool) error {
	tp := TopicPartition{topic, partition}
	var code int16
	if add {
		code, _ = c.AddPartitions(ctx, txnID, pid, epoch, kerr.InvalidProducerEpoch.Code, []TopicPartition{tp})
	} else if s, lc := c.lookup(txnID); lc != 0 {
		code = lc
	} else {
		m := s.txns[txnID]
		code = checkLocked(m, pid, epoch, kerr.InvalidProducerEpoch.Code)
		if code == 0 {
			if _, ok := m.parts[tp]; !ok || m.state != Ongoing {
				code = kerr.InvalidTxnState.Code
			}
		}
		s.Unlock()
	}
	if code == 0 {
		return nil
	}
	return kerr.ErrorForCode(code)
}

// EndTxn commits or aborts a producer's transaction: the decision
// (PrepareCommit or PrepareAbort) is made durable, markers are written to
// every partition in it, and the completed state is stored. The answer
// waits for the markers, a few seconds at most; the decision stands
// either way. From v5 (KIP-890 part 2) the epoch is bumped with the
// decision, the markers carry the new epoch so a late write of the old
// one is fenced, and the new epoch (or producer id, when the epoch ran
// out) is returned.
func (c *Coordinator) EndTxn(ctx context.Context, req *kmsg.EndTxnRequest) *kmsg.EndTxnResponse {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	tv2 := req.Version >= 5
	s, code := c.lookup(req.TransactionalID)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	m := s.txns[req.TransactionalID]
	answer := func(code int16) *kmsg.EndTxnResponse {
		resp.ErrorCode = code
		if code == 0 && tv2 {
			resp.ProducerID, resp.ProducerEpoch = m.pid, m.epoch
		}
		return resp
	}
	want := PrepareAbort
	if req.Commit {
		want = PrepareCommit
	}
	wantDone := want + 2 // CompleteCommit or CompleteAbort
	if m != nil && tv2 && req.ProducerEpoch >= 0 {
		// A retry of an EndTxn v5 that bumped the epoch (or moved to a
		// new producer id): answer with what it got.
		retried := (m.pid == req.ProducerID && m.epoch == req.ProducerEpoch+1) ||
			(m.lastPid == req.ProducerID && m.epoch == 0 && req.ProducerEpoch >= maxEpoch)
		if retried && (m.state == want || m.state == wantDone) {
			done := m.done
			s.Unlock()
			if done != nil && !waitDone(ctx, done) {
				return answer(kerr.ConcurrentTransactions.Code)
			}
			s.Lock()
			defer s.Unlock()
			return answer(0)
		}
	}
	if m == nil || m.pid != req.ProducerID {
		s.Unlock()
		return answer(kerr.InvalidProducerIDMapping.Code)
	}
	if req.ProducerEpoch != m.epoch {
		s.Unlock()
		return answer(FencedCode(req.Version, 2))
	}
	switch {
	case m.done != nil || m.state.preparing():
		code := kerr.ConcurrentTransactions.Code
		if m.state != want {
			code = kerr.InvalidTxnState.Code
		}
		s.Unlock()
		return answer(code)
	case m.state == wantDone && !tv2:
		// A retry of the EndTxn that completed it.
		s.Unlock()
		return answer(0)
	case m.state == Ongoing, tv2 && !req.Commit && m.state != Dead:
		// Under KIP-890 part 2 an abort with nothing open is legal and
		// only bumps the epoch.
	default:
		s.Unlock()
		return answer(kerr.InvalidTxnState.Code)
	}
	if tv2 {
		m.tv = 2
		m.lastEpoch = m.epoch
		if m.epoch >= maxEpoch {
			pid, err := c.allocateID(ctx)
			if err != nil {
				s.Unlock()
				return answer(kerr.CoordinatorNotAvailable.Code)
			}
			m.nextPid = pid
		}
		m.epoch++
	} else {
		// Per request, not once per id: a client pinned to EndTxn v4
		// that takes over an id last used by a newer one writes its
		// data and markers at one epoch, which a TV2 marker check
		// would refuse.
		m.tv = 1
	}
	m.state = want
	wait, err := s.storeLocked(m)
	if err != nil {
		s.Unlock()
		return answer(kerr.CoordinatorNotAvailable.Code)
	}
	s.completeLocked(m, wait)
	done := m.done
	s.Unlock()
	if code := durable(ctx, wait); code != 0 {
		return answer(code)
	}
	waitDone(ctx, done)
	s.Lock()
	defer s.Unlock()
	return answer(0)
}

// DescribeTransactions describes transactional ids.
func (c *Coordinator) DescribeTransactions(req *kmsg.DescribeTransactionsRequest) *kmsg.DescribeTransactionsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		st.ProducerID, st.ProducerEpoch, st.StartTimestamp = -1, -1, -1
		s, code := c.lookup(id)
		if code != 0 {
			st.ErrorCode = code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		if m := s.txns[id]; m == nil {
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
		} else {
			st.State = m.state.String()
			st.ProducerID, st.ProducerEpoch = m.pid, m.epoch
			st.TimeoutMillis = int32(m.timeout.Milliseconds())
			if !m.start.IsZero() {
				st.StartTimestamp = m.start.UnixMilli()
			}
			for _, tp := range m.sortedPartitions() {
				if n := len(st.Topics); n > 0 && st.Topics[n-1].Topic == tp.Topic {
					st.Topics[n-1].Partitions = append(st.Topics[n-1].Partitions, tp.Partition)
					continue
				}
				t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
				t.Topic = tp.Topic
				t.Partitions = []int32{tp.Partition}
				st.Topics = append(st.Topics, t)
			}
		}
		s.Unlock()
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp
}

// ListTransactions lists the transactional ids this broker coordinates,
// filtered by state, producer id, age of the open transaction (v1) and
// an id pattern (v2, a regular expression). Unknown state names come back
// in UnknownStateFilters; a partition still loading makes the answer
// COORDINATOR_LOAD_IN_PROGRESS.
func (c *Coordinator) ListTransactions(req *kmsg.ListTransactionsRequest) *kmsg.ListTransactionsResponse {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	states := make(map[State]bool)
	for _, name := range req.StateFilters {
		if st, ok := ParseState(name); ok {
			states[st] = true
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
		}
	}
	if len(req.StateFilters) > 0 && len(states) == 0 {
		return resp // nothing can match
	}
	var pattern *regexp.Regexp
	if req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		re, err := regexp.Compile(*req.TransactionalIDPattern)
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp
		}
		pattern = re
	}
	now := c.clock.Now()
	for _, s := range c.shardList() {
		s.Lock()
		if !s.ServingLocked() {
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		}
		for _, m := range s.txns {
			switch {
			case len(states) > 0 && !states[m.state]:
			case len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, m.pid):
			case req.DurationFilterMillis >= 0 && req.Version >= 1 && (m.start.IsZero() || now.Sub(m.start).Milliseconds() < req.DurationFilterMillis):
			case pattern != nil && !pattern.MatchString(m.id):
			default:
				st := kmsg.NewListTransactionsResponseTransactionState()
				st.TransactionalID, st.ProducerID, st.TransactionState = m.id, m.pid, m.state.String()
				resp.TransactionStates = append(resp.TransactionStates, st)
			}
		}
		s.Unlock()
	}
	slices.SortFunc(resp.TransactionStates, func(a, b kmsg.ListTransactionsResponseTransactionState) int {
		switch {
		case a.TransactionalID < b.TransactionalID:
			return -1
		case a.TransactionalID > b.TransactionalID:
			return 1
		}
		return 0
	})
	return resp
}
