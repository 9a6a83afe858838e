package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxFrame bounds a request frame (Kafka's socket.request.max.bytes).
const maxFrame = 100 << 20

// versions are the APIs served and their version ranges.
var versions = map[int16][2]int16{
	0:  {3, 8},  // Produce
	1:  {4, 11}, // Fetch: non-flexible, named topics (fetch.go encodes it)
	2:  {1, 5},  // ListOffsets
	3:  {1, 8},  // Metadata
	8:  {2, 8},  // OffsetCommit (offsets.go)
	9:  {1, 8},  // OffsetFetch
	10: {0, 4},  // FindCoordinator (groups.go)
	11: {0, 9},  // JoinGroup
	12: {0, 4},  // Heartbeat
	13: {0, 5},  // LeaveGroup
	14: {0, 5},  // SyncGroup
	18: {0, 3},  // ApiVersions
	19: {2, 4},  // CreateTopics
	22: {0, 1},  // InitProducerID
}

type server struct {
	addr      *net.TCPAddr
	st        *store
	groups    *coordinator
	producers atomic.Int64
	// sndbuf is each accepted connection's send buffer; 0 leaves the
	// kernel's, which grows to megabytes and costs the sender more per
	// byte on loopback (bench/README.md, "The socket send buffer").
	sndbuf int
	// keepRead keeps every batch: without it, memory mode drops what
	// every fetching connection has fetched (store.noteRead).
	keepRead bool
}

func newServer(addr *net.TCPAddr, dir string) *server {
	return &server{addr: addr, st: newStore(dir), groups: newCoordinator(addr)}
}

// expireEvery is how often the coordinator looks for members whose
// session ran out.
const expireEvery = time.Second

// serve accepts connections until ln closes, then closes them all and
// waits for their goroutines (and the coordinator's).
func (s *server) serve(ctx context.Context, ln net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // before the wait: it stops the coordinator's expiry
	wg.Go(func() { s.groups.expire(ctx, expireEvery) })
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
			if s.sndbuf > 0 {
				_ = tc.SetWriteBuffer(s.sndbuf) // failing leaves the kernel's: slower, not wrong
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop := context.AfterFunc(ctx, func() { nc.Close() })
			defer stop()
			defer nc.Close()
			s.serveConn(ctx, nc)
		}()
	}
}

// request is a decoded request with its header.
type request struct {
	key, version int16
	corr         int32
	flexible     bool
	kreq         kmsg.Request
}

// serveConn answers one connection's requests in order until it closes or
// sends what cannot be parsed.
func (s *server) serveConn(ctx context.Context, nc net.Conn) {
	r := bufio.NewReaderSize(nc, 64<<10)
	var size [4]byte
	for {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < 8 || n > maxFrame {
			return
		}
		// A new buffer per frame: a Produce's batches are kept as they
		// lie in it.
		frame := make([]byte, n)
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		req, err := decode(frame)
		if err != nil {
			fmt.Println("fetchceiling:", err)
			return
		}
		if req.key == 1 {
			if err := s.fetch(ctx, nc, req); err != nil {
				return
			}
			continue
		}
		var resp kmsg.Response
		if isGroupKey(req.key) {
			// JoinGroup and SyncGroup wait for the other members here,
			// as Kafka holds a connection's next request until it has
			// answered the last one.
			resp = s.groups.handle(ctx, req.kreq)
		} else {
			resp = s.handle(req)
		}
		if resp == nil {
			continue // acks=0, or shutting down
		}
		if _, err := nc.Write(frameResponse(req, resp)); err != nil {
			return
		}
	}
}

// isGroupKey says whether the coordinator answers API key k.
func isGroupKey(k int16) bool { return k >= 8 && k <= 14 }

func decode(frame []byte) (*request, error) {
	req := &request{
		key:     int16(binary.BigEndian.Uint16(frame)),
		version: int16(binary.BigEndian.Uint16(frame[2:])),
		corr:    int32(binary.BigEndian.Uint32(frame[4:])),
	}
	vr, ok := versions[req.key]
	if !ok || req.version < vr[0] || req.version > vr[1] && req.key != 18 {
		return nil, fmt.Errorf("%s v%d not served", kmsg.NameForKey(req.key), req.version)
	}
	req.kreq = kmsg.RequestForKey(req.key)
	req.kreq.SetVersion(req.version)
	req.flexible = req.kreq.IsFlexible()
	body := frame[8:]
	if len(body) < 2 {
		return nil, errors.New("truncated header")
	}
	if l := int16(binary.BigEndian.Uint16(body)); l > 0 {
		if int(l) > len(body)-2 {
			return nil, errors.New("truncated client id")
		}
		body = body[2+int(l):]
	} else {
		body = body[2:]
	}
	if req.flexible {
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	if err := req.kreq.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(req.key), req.version, err)
	}
	return req, nil
}

// skipTags skips a request header's tagged fields.
func skipTags(b []byte) ([]byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 {
		return nil, errors.New("bad tagged fields")
	}
	b = b[l:]
	for range n {
		if _, l = binary.Uvarint(b); l <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[l:]
		size, l := binary.Uvarint(b)
		if l <= 0 || size > uint64(len(b)-l) {
			return nil, errors.New("bad tag size")
		}
		b = b[l+int(size):]
	}
	return b, nil
}

// frameResponse frames resp: size, correlation id, the header's tags when
// flexible (never for ApiVersions), the body.
func frameResponse(req *request, resp kmsg.Response) []byte {
	dst := make([]byte, 8, 256)
	binary.BigEndian.PutUint32(dst[4:], uint32(req.corr))
	if req.flexible && req.key != 18 {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst, uint32(len(dst)-4))
	return dst
}

// handle answers every request but Fetch.
func (s *server) handle(req *request) kmsg.Response {
	switch r := req.kreq.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
		if r.Version > versions[18][1] {
			// KIP-511: a v0 answer listing what is served.
			resp.SetVersion(0)
			resp.ErrorCode = kerr.UnsupportedVersion.Code
		}
		for key, vr := range versions {
			k := kmsg.NewApiVersionsResponseApiKey()
			k.ApiKey, k.MinVersion, k.MaxVersion = key, vr[0], vr[1]
			resp.ApiKeys = append(resp.ApiKeys, k)
		}
		return resp
	case *kmsg.MetadataRequest:
		return s.metadata(r)
	case *kmsg.CreateTopicsRequest:
		resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic = t.Topic
			n := int(t.NumPartitions)
			if n <= 0 {
				n = 1
			}
			rt.NumPartitions, rt.ReplicationFactor = int32(n), 1
			switch err := s.st.create(t.Topic, n); {
			case errors.Is(err, errExists):
				rt.ErrorCode = kerr.TopicAlreadyExists.Code
			case err != nil:
				rt.ErrorCode = kerr.KafkaStorageError.Code
				rt.ErrorMessage = kmsg.StringPtr(err.Error())
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	case *kmsg.InitProducerIDRequest:
		resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ProducerID = s.producers.Add(1)
		return resp
	case *kmsg.ProduceRequest:
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				first, err := s.st.appendBatches(t.Topic, p.Partition, p.Records)
				rp.BaseOffset = first
				switch {
				case errors.Is(err, errUnknown):
					rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				case err != nil:
					rp.ErrorCode = kerr.CorruptMessage.Code
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		if r.Acks == 0 {
			return nil
		}
		return resp
	case *kmsg.ListOffsetsRequest:
		resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewListOffsetsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewListOffsetsResponseTopicPartition()
				rp.Partition = p.Partition
				start, hw, err := s.st.bounds(t.Topic, p.Partition)
				if err != nil {
					rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				} else if p.Timestamp == -2 {
					rp.Offset = start
				} else {
					rp.Offset = hw // latest; no timestamps are kept
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	return nil
}

func (s *server) metadata(r *kmsg.MetadataRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = 0, s.addr.IP.String(), int32(s.addr.Port)
	resp.Brokers = []kmsg.MetadataResponseBroker{b}
	resp.ControllerID = 0
	var names []string
	if r.Topics == nil {
		s.st.mu.Lock()
		for t := range s.st.topics {
			names = append(names, t)
		}
		s.st.mu.Unlock()
	}
	for _, t := range r.Topics {
		if t.Topic != nil {
			names = append(names, *t.Topic)
		}
	}
	for _, name := range names {
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = kmsg.StringPtr(name)
		n := s.st.partitions(name)
		if n < 0 {
			rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		for i := 0; i < n; i++ {
			rp := kmsg.NewMetadataResponseTopicPartition()
			rp.Partition, rp.Leader, rp.Replicas, rp.ISR = int32(i), 0, []int32{0}, []int32{0}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
