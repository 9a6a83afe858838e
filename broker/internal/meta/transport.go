package meta

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// The controller listener. In a cluster every node listens on one
// controller address (Config.Listen) that carries two kinds of
// connection, told apart by their first byte:
//
//	'r'  Raft traffic (hashicorp/raft's network transport)
//	'f'  a forwarded call: one request, one response, each a 4-byte
//	     big-endian length and a JSON body (forwardRequest,
//	     forwardResponse)
//
// Forwarded calls are how a node that does not lead the Raft group
// proposes a change (the leader applies it and answers with its log index
// and error) and how every broker heartbeats to the controller, which
// keeps liveness in memory as Kafka's controller does.

const (
	connRaft    = 'r'
	connForward = 'f'
)

// maxForwardFrame bounds a forwarded request or response.
const maxForwardFrame = 16 << 20

// Voter is one member of the controller quorum.
type Voter struct {
	ID   int32
	Addr string // host:port of its controller listener
}

// ParseQuorum parses Kafka's controller.quorum.voters form:
// "1@host:port,2@host:port,3@host:port".
func ParseQuorum(s string) ([]Voter, error) {
	var out []Voter
	seen := make(map[int32]bool)
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		id, addr, ok := strings.Cut(part, "@")
		if !ok {
			return nil, fmt.Errorf("meta: quorum entry %q is not ID@HOST:PORT", part)
		}
		n, err := strconv.ParseInt(id, 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("meta: quorum entry %q: bad node id", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("meta: quorum entry %q: %v", part, err)
		}
		if seen[int32(n)] {
			return nil, fmt.Errorf("meta: quorum names node %d twice", n)
		}
		seen[int32(n)] = true
		out = append(out, Voter{ID: int32(n), Addr: addr})
	}
	return out, nil
}

// muxListener accepts controller connections and sorts them: Raft ones
// are handed to raft through Accept, forwarded calls to serve.
type muxListener struct {
	ln    net.Listener
	raft  chan net.Conn
	serve func(net.Conn)
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	// tls, when set, makes the listener TLS (transport_tls.go); refused
	// hears of each handshake that fails.
	tls     *tls.Config
	refused func(from net.Addr, err error)

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
}

func newMuxListener(ln net.Listener, serve func(net.Conn), dial func(ctx context.Context, network, addr string) (net.Conn, error), tlsConfig *tls.Config, refused func(net.Addr, error)) *muxListener {
	m := &muxListener{ln: ln, raft: make(chan net.Conn), serve: serve, dial: dial, tls: tlsConfig, refused: refused, closed: make(chan struct{})}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.acceptLoop() }()
	return m
}

func (m *muxListener) acceptLoop() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			c, ok := m.secure(c)
			if !ok {
				return
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			var kind [1]byte
			if _, err := io.ReadFull(c, kind[:]); err != nil {
				c.Close()
				return
			}
			c.SetReadDeadline(time.Time{})
			switch kind[0] {
			case connRaft:
				select {
				case m.raft <- c:
				case <-m.closed:
					c.Close()
				}
			case connForward:
				m.serve(c)
				c.Close()
			default:
				c.Close()
			}
		}()
	}
}

// Accept hands raft its next connection.
func (m *muxListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.raft:
		return c, nil
	case <-m.closed:
		return nil, net.ErrClosed
	}
}

// Close stops accepting. Connections already handed out belong to raft.
func (m *muxListener) Close() error {
	m.closeOnce.Do(func() {
		close(m.closed)
		m.ln.Close()
	})
	return nil
}

// wait waits for the accept loop and forwarded calls in progress.
func (m *muxListener) wait() { m.wg.Wait() }

func (m *muxListener) Addr() net.Addr { return m.ln.Addr() }

// Dial opens a Raft connection to another node.
func (m *muxListener) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := m.dial(ctx, "tcp", string(addr))
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{connRaft}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// newNetworkTransport is Raft over the controller listener, recording
// the followers' progress in tracker (lastIndex is the local Raft's last
// log index).
func newNetworkTransport(m *muxListener, tracker *progressTracker, lastIndex func() uint64) raft.Transport {
	nt := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  m,
		MaxPool: 3,
		Timeout: 5 * time.Second,
		Logger:  hclog.NewNullLogger(),
	})
	return &progressTransport{NetworkTransport: nt, tracker: tracker, lastIndex: lastIndex}
}

// forwardRequest is a call from a node to the controller.
type forwardRequest struct {
	// Kind is "apply" (Command is a command to replicate), "heartbeat"
	// (Broker is alive), "join" (Broker, at Addr, joins as a non-voter) or
	// "index" (the controller's applied index, after a barrier) or
	// "quorum" (the controller's DescribeQuorum).
	Kind    string          `json:"kind"`
	Command json.RawMessage `json:"command,omitempty"`
	Broker  int32           `json:"broker,omitempty"`
	// Addr is a joining node's controller listener ("join").
	Addr string `json:"addr,omitempty"`
}

// forwardResponse answers a forwardRequest. Err is empty on success;
// Sentinel names the package error it wraps (see sentinels), so errors.Is
// works across the hop.
type forwardResponse struct {
	Index uint64 `json:"index,omitempty"`
	// Quorum answers a "quorum" call.
	Quorum   *QuorumInfo `json:"quorum,omitempty"`
	Err      string      `json:"err,omitempty"`
	Sentinel string      `json:"sentinel,omitempty"`
}

// sentinels are the errors a forwarded call can carry by name.
var sentinels = map[string]error{
	"topic-exists":        ErrTopicExists,
	"unknown-topic":       ErrUnknownTopic,
	"invalid-topic":       ErrInvalidTopic,
	"invalid-partitions":  ErrInvalidPartitions,
	"invalid-rf":          ErrInvalidReplicationFactor,
	"not-controller":      ErrNotController,
	"closed":              ErrClosed,
	"id-conflict":         errIDConflict,
	"config-conflict":     errConfigConflict,
	"fenced-leader-epoch": ErrFencedLeaderEpoch,
	"stale-partition":     ErrStalePartitionEpoch,
	"ineligible-replica":  ErrIneligibleReplica,
	"unknown-broker":      ErrUnknownBroker,
	"partition-limit":     ErrPartitionLimit,
	"election-not-needed": ErrElectionNotNeeded,
	"preferred-leader-na": ErrPreferredLeaderNotAvailable,
	"eligible-leaders-na": ErrEligibleLeadersNotAvailable,
	"invalid-assignment":  ErrInvalidReplicaAssignment,
	"no-reassignment":     ErrNoReassignmentInProgress,
}

func encodeError(err error) forwardResponse {
	if err == nil {
		return forwardResponse{}
	}
	for name, s := range sentinels {
		if errors.Is(err, s) {
			return forwardResponse{Err: err.Error(), Sentinel: name}
		}
	}
	return forwardResponse{Err: err.Error()}
}

func decodeError(r forwardResponse) error {
	if r.Err == "" {
		return nil
	}
	if s, ok := sentinels[r.Sentinel]; ok {
		return &remoteError{msg: r.Err, sentinel: s}
	}
	return errors.New(r.Err)
}

// remoteError is an error the controller returned; it reads as the
// controller's message and matches the sentinel it wrapped.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

func writeFrame(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body)))
	_, err = w.Write(append(buf, body...))
	return err
}

func readFrame(r io.Reader, v any) error {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > maxForwardFrame {
		return fmt.Errorf("meta: forwarded frame of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// serveForward answers one forwarded call on c.
func (s *Store) serveForward(c net.Conn) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var req forwardRequest
	if err := readFrame(c, &req); err != nil {
		return
	}
	select {
	case <-s.raftReady:
	case <-s.closed:
		writeFrame(c, encodeError(ErrClosed))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var resp forwardResponse
	switch req.Kind {
	case "apply":
		var cmd command
		if err := json.Unmarshal(req.Command, &cmd); err != nil {
			resp = forwardResponse{Err: fmt.Sprintf("meta: decode forwarded command: %v", err)}
			break
		}
		idx, err := s.applyLocal(ctx, &cmd)
		resp = encodeError(err)
		resp.Index = idx
	case "heartbeat":
		resp = encodeError(s.beatLocal(req.Broker))
	case "join":
		resp = encodeError(s.addNonvoter(req.Broker, req.Addr))
	case "index":
		idx, err := s.committedIndex()
		resp = encodeError(err)
		resp.Index = idx
	case "quorum":
		q, err := s.describeQuorumLocal()
		resp = encodeError(err)
		if err == nil {
			resp.Quorum = &q
		}
	default:
		resp = forwardResponse{Err: fmt.Sprintf("meta: unknown forwarded call %q", req.Kind)}
	}
	writeFrame(c, resp)
}

// forward sends a call to the current controller and returns its answer.
func (s *Store) forward(ctx context.Context, req forwardRequest) (forwardResponse, error) {
	addr, _ := s.raft.LeaderWithID()
	if addr == "" {
		return forwardResponse{}, fmt.Errorf("%w: no controller elected", ErrNotController)
	}
	return s.forwardTo(ctx, string(addr), req)
}

// forwardTo sends a call to the node at addr (a controller listener).
func (s *Store) forwardTo(ctx context.Context, addr string, req forwardRequest) (forwardResponse, error) {
	c, err := s.cfg.Dial(ctx, "tcp", addr)
	if err != nil {
		return forwardResponse{}, fmt.Errorf("%w: dial controller %s: %v", ErrNotController, addr, err)
	}
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	if _, err := c.Write([]byte{connForward}); err != nil {
		return forwardResponse{}, fmt.Errorf("%w: %v", ErrNotController, err)
	}
	if err := writeFrame(c, req); err != nil {
		return forwardResponse{}, fmt.Errorf("%w: %v", ErrNotController, err)
	}
	var resp forwardResponse
	if err := readFrame(c, &resp); err != nil {
		return forwardResponse{}, fmt.Errorf("%w: controller %s: %v", ErrNotController, addr, err)
	}
	return resp, nil
}
