package main

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxWait caps a fetch's long poll.
const maxWait = 30 * time.Second

// fetch answers a Fetch v4-v11: whole stored batches from each partition's
// fetch offset, within PartitionMaxBytes and MaxBytes but at least one
// batch (KIP-74), waiting up to MaxWait while there is nothing to send.
func (s *server) fetch(ctx context.Context, nc net.Conn, req *request) error {
	r := req.kreq.(*kmsg.FetchRequest)
	deadline := time.Now().Add(min(time.Duration(r.MaxWaitMillis)*time.Millisecond, maxWait))
	var (
		tps  []topicPartition
		wake chan struct{}
		t    *time.Timer
	)
	for {
		pieces, total := s.encodeFetch(req, r, nc)
		if total > 0 || r.MinBytes <= 0 || !time.Now().Before(deadline) {
			if wake != nil {
				s.st.unwatch(wake, tps)
				t.Stop()
			}
			return writePieces(nc, pieces)
		}
		if wake == nil {
			// Watch, then read again: an append between the read above
			// and the watch is seen by the read, one after it wakes us.
			for _, ft := range r.Topics {
				for _, p := range ft.Partitions {
					tps = append(tps, topicPartition{ft.Topic, p.Partition})
				}
			}
			wake = make(chan struct{}, 1)
			t = time.NewTimer(time.Until(deadline))
			s.st.watch(wake, tps)
			continue
		}
		select {
		case <-wake:
			s.st.watch(wake, tps) // an append forgets its partition's waiters
		case <-t.C:
		case <-ctx.Done():
			s.st.unwatch(wake, tps)
			t.Stop()
			return ctx.Err()
		}
	}
}

// piece is a run of framing followed by a partition's records (none in
// the last piece).
type piece struct {
	head []byte
	recs span
}

// encodeFetch builds the response as pieces and returns the record bytes
// in it. The first piece's head starts with the frame's size.
func (s *server) encodeFetch(req *request, r *kmsg.FetchRequest, reader net.Conn) ([]piece, int) {
	v := r.Version
	var now time.Time
	if !s.keepRead {
		now = time.Now()
	}
	head := make([]byte, 8, 512)
	binary.BigEndian.PutUint32(head[4:], uint32(req.corr))
	head = kbin.AppendInt32(head, 0) // throttle
	if v >= 7 {
		head = kbin.AppendInt16(head, 0)
		head = kbin.AppendInt32(head, 0) // no fetch sessions
	}
	var pieces []piece
	size, total := 0, 0
	remaining := int(r.MaxBytes)
	if remaining <= 0 {
		remaining = 55 << 20
	}
	head = kbin.AppendArrayLen(head, len(r.Topics))
	for _, t := range r.Topics {
		head = kbin.AppendString(head, t.Topic)
		head = kbin.AppendArrayLen(head, len(t.Partitions))
		for _, p := range t.Partitions {
			limit := min(int(p.PartitionMaxBytes), remaining)
			if !s.keepRead {
				s.st.noteRead(t.Topic, p.Partition, reader, p.FetchOffset, now)
			}
			sp, hw, err := s.st.read(t.Topic, p.Partition, p.FetchOffset, limit, total == 0)
			code := int16(0)
			switch {
			case errors.Is(err, errOutOfRange):
				code = kerr.OffsetOutOfRange.Code
			case err != nil:
				code = kerr.UnknownTopicOrPartition.Code
			}
			head = kbin.AppendInt32(head, p.Partition)
			head = kbin.AppendInt16(head, code)
			head = kbin.AppendInt64(head, hw)
			head = kbin.AppendInt64(head, hw) // last stable offset
			if v >= 5 {
				head = kbin.AppendInt64(head, 0) // log start offset
			}
			head = kbin.AppendNullableArrayLen(head, 0, true) // aborted transactions
			if v >= 11 {
				head = kbin.AppendInt32(head, -1) // preferred read replica
			}
			head = kbin.AppendInt32(head, int32(sp.n))
			if sp.n > 0 {
				pieces = append(pieces, piece{head: head, recs: sp})
				size += len(head) + sp.n
				head = make([]byte, 0, 512)
			}
			total += sp.n
			remaining -= sp.n
		}
	}
	pieces = append(pieces, piece{head: head})
	size += len(head)
	binary.BigEndian.PutUint32(pieces[0].head, uint32(size-4))
	return pieces, total
}

// writePieces writes a response: records in memory with one writev, or
// records in files with sendfile between corked writes of the framing.
func writePieces(nc net.Conn, pieces []piece) error {
	if len(pieces) > 1 && pieces[0].recs.f != nil {
		return sendPieces(nc.(*net.TCPConn), pieces)
	}
	var bufs net.Buffers
	for _, p := range pieces {
		bufs = append(bufs, p.head)
		bufs = append(bufs, p.recs.batches...)
	}
	_, err := bufs.WriteTo(nc)
	return err
}
