package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/group"
	"github.com/runnel-dev/runnel/broker/internal/log"
	"github.com/runnel-dev/runnel/broker/internal/txn"
)

// Transactions across brokers. The transaction coordinator of a
// transactional id runs on the leader of its __transaction_state
// partition; the partitions in its transactions are led by any broker.
// Two conversations cross brokers, over the Kafka protocol as Kafka's do:
//
//   - Markers: the coordinator writes a transaction's COMMIT or ABORT
//     markers on each partition's leader. A local leader takes it
//     in-process; another is sent WriteTxnMarkers (API 27, handled in
//     27_write_txn_markers.go), batched with the other markers bound for
//     the same broker (txn_marker_batch.go). A refusal (NOT_LEADER_OR_FOLLOWER while
//     a leadership moves, a timeout, a dead broker) fails the write, and
//     the coordinator retries it (txn.Coordinator.writeMarkers) with the
//     leader named by the metadata at that time, until the marker lands.
//   - Verification (KIP-890): before a transactional produce opens a
//     transaction on a partition, its leader asks the coordinator whether
//     the partition is in the transaction (or, Produce v12+, to add it).
//     A local coordinator answers in-process; otherwise the leader of the
//     transactional id's partition is sent AddPartitionsToTxn v4 (the
//     broker-to-broker batched form, VerifyOnly unless adding). A group
//     coordinator checks a TxnOffsetCommit the same way.
//
// Requests go through peerClients: idle connections per broker, one
// request at a time on each.

// peerRequestTimeout bounds one broker-to-broker request; the caller's
// context may end it sooner.
const peerRequestTimeout = 15 * time.Second

// peerIdleMax is how many idle connections to one broker are kept.
const peerIdleMax = 4

// peerClients sends requests to other brokers.
type peerClients struct {
	b *Broker

	mu sync.Mutex // guards the following
	// idle holds open connections not in use, by broker id.
	idle   map[int32][]idlePeer
	closed bool
}

// idlePeer is an idle connection and the address it was dialled at (a
// broker restarted elsewhere is dialled afresh).
type idlePeer struct {
	addr string
	pc   *peerConn
}

func newPeerClients(b *Broker) *peerClients {
	return &peerClients{b: b, idle: make(map[int32][]idlePeer)}
}

// errPeerClosed is returned once the broker stops.
var errPeerClosed = errors.New("broker: peer clients closed")

// request sends req to broker node and returns its response. A
// connection that fails is closed; one that answered is kept for the
// next request.
func (pcs *peerClients) request(ctx context.Context, node int32, req kmsg.Request) (kmsg.Response, error) {
	br, ok := pcs.b.meta.Cluster().Brokers[node]
	if !ok {
		return nil, fmt.Errorf("broker: broker %d is not registered", node)
	}
	addr := net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port)))
	pc, err := pcs.get(ctx, node, addr)
	if err != nil {
		return nil, err
	}
	// An ended context cuts the request short: the deadline it sets
	// makes the read or write fail (peerConn.request checks ctx after
	// setting its own deadline, so this one is never overwritten).
	stop := context.AfterFunc(ctx, func() { pc.nc.SetDeadline(time.Unix(1, 0)) })
	resp, err := pc.request(ctx, req, peerRequestTimeout)
	if !stop() || err != nil {
		pc.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("broker: %s to broker %d: %w", kmsg.NameForKey(req.Key()), node, err)
	}
	pcs.put(node, idlePeer{addr, pc})
	return resp, nil
}

// get returns an idle connection to node at addr, or dials one.
func (pcs *peerClients) get(ctx context.Context, node int32, addr string) (*peerConn, error) {
	pcs.mu.Lock()
	if pcs.closed {
		pcs.mu.Unlock()
		return nil, errPeerClosed
	}
	var stale []*peerConn
	var found *peerConn
	for found == nil && len(pcs.idle[node]) > 0 {
		l := pcs.idle[node]
		ip := l[len(l)-1]
		pcs.idle[node] = l[:len(l)-1]
		if ip.addr == addr {
			found = ip.pc
		} else {
			stale = append(stale, ip.pc)
		}
	}
	pcs.mu.Unlock()
	for _, pc := range stale {
		pc.close()
	}
	if found != nil {
		return found, nil
	}
	pc, err := pcs.b.dialInterBroker(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("broker: dial broker %d: %w", node, err)
	}
	pc.clientID = "runnel-broker-" + strconv.Itoa(int(pcs.b.cfg.NodeID))
	return pc, nil
}

// put keeps pc for the next request to node, or closes it.
func (pcs *peerClients) put(node int32, ip idlePeer) {
	pcs.mu.Lock()
	if !pcs.closed && len(pcs.idle[node]) < peerIdleMax {
		pcs.idle[node] = append(pcs.idle[node], ip)
		ip.pc = nil
	}
	pcs.mu.Unlock()
	if ip.pc != nil {
		ip.pc.close()
	}
}

// close closes the idle connections and refuses new requests; requests
// in flight end with their callers' contexts.
func (pcs *peerClients) close() {
	pcs.mu.Lock()
	pcs.closed = true
	idle := pcs.idle
	pcs.idle = nil
	pcs.mu.Unlock()
	for _, l := range idle {
		for _, ip := range l {
			ip.pc.close()
		}
	}
}

// writeTxnMarker writes one transaction marker for the coordinator on the
// partition's leader: here, or on another broker with WriteTxnMarkers. A
// partition that no longer exists needs no marker. The coordinator
// retries an error, with the metadata of that time.
func (b *Broker) writeTxnMarker(ctx context.Context, m txn.Marker) error {
	leader, ok := b.partitionLeader(m.Topic, m.Partition)
	switch {
	case !ok:
		return nil
	case leader == b.cfg.NodeID:
		return b.writeTxnMarkerLocal(ctx, m)
	case leader < 0:
		return fmt.Errorf("broker: %s-%d has no leader", m.Topic, m.Partition)
	}
	return b.markers.write(ctx, leader, m) // batched per broker: txn_marker_batch.go
}

// partitionLeader returns the leader of a partition as metadata has it
// now, and false when the partition does not exist.
func (b *Broker) partitionLeader(topic string, partition int32) (int32, bool) {
	t := b.meta.Cluster().Topics[topic]
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return -1, false
	}
	return t.Partitions[partition].Leader, true
}

// writeTxnMarkerLocal writes a marker on a partition this broker leads:
// to a data partition's log, or, for __consumer_offsets, through the
// group coordinator, which applies or drops the transaction's offsets
// with it.
func (b *Broker) writeTxnMarkerLocal(ctx context.Context, m txn.Marker) error {
	if m.Topic == offsetsTopic {
		return b.groups.CompleteTxn(ctx, m.Partition, group.TxnMarker{ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch, Commit: m.Commit, CoordinatorEpoch: m.CoordinatorEpoch, TV2: m.TV2})
	}
	p := b.parts.get(m.Topic, m.Partition)
	if p == nil {
		return fmt.Errorf("broker: %s-%d: %w", m.Topic, m.Partition, errNotLeader)
	}
	_, err := p.appendMarker(ctx, log.Marker{ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch, Commit: m.Commit, CoordinatorEpoch: m.CoordinatorEpoch, TV2: m.TV2})
	return err
}

// writeTxnMarkersVersion is the WriteTxnMarkers version brokers send
// (v2 carries the transaction version, KIP-890 part 2).
const writeTxnMarkersVersion = 2

// verifyTxnPartition is the KIP-890 check of a transactional write to
// topic/partition (txn.Coordinator.VerifyPartition), asked of the
// coordinator of txnID wherever it runs: here, or on the leader of its
// __transaction_state partition with AddPartitionsToTxn v4. The error is
// a *kerr.Error the caller answers with, or another error
// (UNKNOWN_SERVER_ERROR).
func (b *Broker) verifyTxnPartition(ctx context.Context, txnID string, pid int64, epoch int16, topic string, partition int32, add bool) error {
	err := b.txns.VerifyPartition(ctx, txnID, pid, epoch, topic, partition, add)
	if !errors.Is(err, kerr.NotCoordinator) {
		return err
	}
	t := b.meta.Cluster().Topics[txnStateTopic]
	if t == nil || len(t.Partitions) == 0 {
		return kerr.CoordinatorNotAvailable
	}
	leader := t.Partitions[txn.PartitionFor(txnID, int32(len(t.Partitions)))].Leader
	switch {
	case leader < 0:
		return kerr.CoordinatorNotAvailable
	case leader == b.cfg.NodeID:
		return err // this broker's shard is not placed yet
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 4
	rt := kmsg.NewAddPartitionsToTxnRequestTransaction()
	rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, rt.VerifyOnly = txnID, pid, epoch, !add
	rtt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
	rtt.Topic, rtt.Partitions = topic, []int32{partition}
	rt.Topics = append(rt.Topics, rtt)
	req.Transactions = append(req.Transactions, rt)
	resp, rerr := b.peers.request(ctx, leader, req)
	if rerr != nil {
		b.logger.Debug("verify transaction with its coordinator", "transactional_id", txnID, "coordinator", leader, "err", rerr)
		return kerr.CoordinatorNotAvailable
	}
	r := resp.(*kmsg.AddPartitionsToTxnResponse)
	if r.ErrorCode != 0 {
		return kerr.ErrorForCode(r.ErrorCode)
	}
	for _, st := range r.Transactions {
		for _, stt := range st.Topics {
			for _, sp := range stt.Partitions {
				if st.TransactionalID == txnID && stt.Topic == topic && sp.Partition == partition {
					if sp.ErrorCode == 0 {
						return nil
					}
					return kerr.ErrorForCode(sp.ErrorCode)
				}
			}
		}
	}
	return fmt.Errorf("broker: coordinator %d did not answer for %s-%d", leader, topic, partition)
}

// produceVerifier is the partitions' txnVerifier: verifyTxnPartition,
// with the coordinator's whereabouts errors (NOT_COORDINATOR,
// COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS) answered as
// NOT_ENOUGH_REPLICAS, as Kafka answers them: a producer does not look
// for a coordinator on a produce error, but retries this one.
type produceVerifier struct{ b *Broker }

func (v produceVerifier) VerifyPartition(ctx context.Context, txnID string, pid int64, epoch int16, topic string, partition int32, add bool) error {
	err := v.b.verifyTxnPartition(ctx, txnID, pid, epoch, topic, partition, add)
	if errors.Is(err, kerr.NotCoordinator) || errors.Is(err, kerr.CoordinatorNotAvailable) || errors.Is(err, kerr.CoordinatorLoadInProgress) {
		return kerr.NotEnoughReplicas
	}
	return err
}
