package broker_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
)

// frame encodes req as a request frame with correlation id corr.
func frame(req kmsg.Request, corr int32) []byte {
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// closedByBroker waits up to timeout for the broker to close the
// connection, discarding anything it sends first.
func closedByBroker(rc *rawConn, timeout time.Duration) bool {
	rc.nc.SetReadDeadline(time.Now().Add(timeout))
	_, err := io.Copy(io.Discard, rc.nc)
	var ne net.Error
	return err == nil || !(errors.As(err, &ne) && ne.Timeout())
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Slow senders (socket.request.max.bytes, queued.max.request.bytes, the
// request read timeout): connections stalled one byte short of a large
// frame hold no more than the budget between them, are dropped once the
// frame takes longer than the read timeout, and give their bytes back.
func TestAbuseSlowSenders(t *testing.T) {
	frameSize := abuseSize(8<<20, 100<<20)
	conns := abuseSize(4, 8)
	budget := int64(2 * frameSize)
	b := testutil.StartBroker(t, broker.Config{
		QueuedMaxRequestBytes: budget,
		SocketRequestMaxBytes: int32(frameSize),
		RequestReadTimeout:    time.Second,
	})
	var rcs []*rawConn
	for range conns {
		rc := dialRaw(t, b.Addr())
		// A Produce frame that never finishes: the size, the key, then
		// a stall one byte short... of most of it.
		hdr := binary.BigEndian.AppendUint32(nil, uint32(frameSize))
		hdr = append(hdr, 0, 0, 0, 9)
		rc.send(hdr)
		rcs = append(rcs, rc)
	}
	waitFor(t, 10*time.Second, "no stalled frame took budget", func() bool { return b.RequestBytesInUse() > 0 })
	if used := b.RequestBytesInUse(); used > budget {
		t.Fatalf("stalled frames hold %d bytes, budget %d", used, budget)
	}
	for i, rc := range rcs {
		if !closedByBroker(rc, 30*time.Second) {
			t.Fatalf("stalled connection %d still open", i)
		}
	}
	waitFor(t, 10*time.Second, "budget not given back", func() bool { return b.RequestBytesInUse() == 0 })
}

// connections.max.idle.ms: a connection that sends nothing is closed.
func TestAbuseIdleConnection(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{ConnectionsMaxIdle: 300 * time.Millisecond})
	rc := dialRaw(t, b.Addr())
	if !closedByBroker(rc, 20*time.Second) {
		t.Fatal("idle connection still open")
	}
	waitFor(t, 10*time.Second, "connection still counted", func() bool { return b.OpenConnections() == 0 })
}

// fetchRequest is a Fetch v11 of partition 0 of topic from offset 0.
func fetchRequest(topic string, maxWait, minBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.ReplicaID = -1
	req.MaxWaitMillis = maxWait
	req.MinBytes = minBytes
	req.MaxBytes = 64 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 64 << 20
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// Abandoned long polls: clients that send a Fetch with the longest
// MaxWait and disconnect leave nothing behind; a client that stays gets
// its answer after FetchMaxWait at most.
func TestAbuseAbandonedLongPolls(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{FetchMaxWait: 2 * time.Second})
	createTopic(t, newAdmin(t, b.Addr()), "quiet", 1, nil)
	base := b.OpenConnections()
	n := abuseSize(50, 300)
	for i := range n {
		rc := dialRaw(t, b.Addr())
		rc.send(frame(fetchRequest("quiet", 1<<31-1, 1), int32(i)))
		rc.nc.Close()
	}
	waitFor(t, 10*time.Second, "abandoned long polls still hold connections", func() bool { return b.OpenConnections() <= base })

	rc := dialRaw(t, b.Addr())
	start := time.Now()
	rc.send(frame(fetchRequest("quiet", 1<<31-1, 1), 1))
	rc.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(rc.nc, size[:]); err != nil {
		t.Fatalf("long poll with MaxWait 2^31-1 ms: %v", err)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("long poll answered after %v, before FetchMaxWait", took)
	}
}

// Pipelined fetches never read (queued.max.requests, and
// connections.max.idle.ms for writes): a client that pipelines fetches of
// a large partition and reads nothing is disconnected once its writes
// stall for the idle time, and the fetches queued behind read nothing once
// it is gone.
func TestAbusePipelinedFetchesNeverRead(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{ConnectionsMaxIdle: time.Second})
	createTopic(t, newAdmin(t, b.Addr()), "wide", 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("wide"), kgo.ProducerBatchMaxBytes(1<<20))
	value := make([]byte, 100<<10)
	size := abuseSize(8<<20, 40<<20)
	for i := 0; i < size/len(value); i++ {
		cl.Produce(testContext(t), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(testContext(t)); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	clients := abuseSize(3, 10)
	var rcs []*rawConn
	for range clients {
		rc := dialRaw(t, b.Addr())
		for i := range 64 {
			rc.send(frame(fetchRequest("wide", 500, 1), int32(i)))
		}
		rcs = append(rcs, rc)
	}
	for i, rc := range rcs {
		if !closedByBroker(rc, 60*time.Second) {
			t.Fatalf("client %d, reading nothing, still connected", i)
		}
	}
	waitFor(t, 10*time.Second, "connections still counted", func() bool { return b.OpenConnections() == 0 })
	// Each client had at most a few responses read before its writes
	// stalled; the rest of its 64 fetches must not have read the log.
	fetched := b.FetchedBytes("wide")
	if limit := float64(clients * 8 * size); fetched > limit {
		t.Fatalf("fetch read %.0f MiB for clients that read nothing, want under %.0f MiB", fetched/(1<<20), limit/(1<<20))
	}
	waitFor(t, 10*time.Second, "budget not given back", func() bool { return b.RequestBytesInUse() == 0 })
}

// Amplification (queued.max.request.bytes charged per decoded byte): an
// OffsetFetch whose frame holds millions of empty topic entries would
// decode to many times its size; it is refused before decoding.
func TestAbuseOffsetFetchAmplification(t *testing.T) {
	frameSize := abuseSize(2<<20, 16<<20)
	b := testutil.StartBroker(t, broker.Config{QueuedMaxRequestBytes: int64(frameSize) * 8, SocketRequestMaxBytes: int32(frameSize) * 2})
	req := kmsg.NewPtrOffsetFetchRequest()
	req.SetVersion(7)
	req.Group = "g"
	n := frameSize / 3
	req.Topics = make([]kmsg.OffsetFetchRequestTopic, n)
	rc := dialRaw(t, b.Addr())
	f := frame(req, 1)
	t.Logf("OffsetFetch v7 with %d topics in %d bytes", n, len(f))
	// The broker may close the connection before the frame is all
	// written, from its header: a failed write is the refusal too.
	rc.nc.Write(f)
	if !closedByBroker(rc, 30*time.Second) {
		t.Fatal("amplifying OffsetFetch: connection still open")
	}

	// The same request, small, is answered.
	req.Topics = req.Topics[:10]
	rc = dialRaw(t, b.Addr())
	rc.send(frame(req, 2))
	rc.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(rc.nc, size[:]); err != nil {
		t.Fatalf("small OffsetFetch: %v", err)
	}
}
