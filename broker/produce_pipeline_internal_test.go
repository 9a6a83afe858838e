package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// holdAcks makes p, led by this broker, wait for a follower (node 99)
// that does not exist: its acks=all produces are acknowledged only once
// the test reports the follower's fetch with followerFetched.
func holdAcks(t *testing.T, p *partition, self int32) {
	t.Helper()
	p.mu.Lock()
	epoch, pepoch := p.leaderEpoch, p.rs.partitionEpoch
	p.mu.Unlock()
	mp := meta.Partition{Leader: self, LeaderEpoch: epoch, PartitionEpoch: pepoch + 1,
		Replicas: []int32{self, 99}, ISR: []int32{self, 99}}
	if err := p.role(mp, self, 1, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// Produce responses are written in request order, and the writer holds a
// response back while more requests are queued so that they share a
// write. A Produce still waiting for its acknowledgement must not hold
// back the responses before it: here the first of two pipelined produces
// is acknowledged while the second waits, and its response must reach the
// client before the second is acknowledged.
func TestPipelinedProduceResponseNotHeldByLaterOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	const topic = "pipelined"
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, 2, 1
	create.Topics = append(create.Topics, ct)
	cresp, err := create.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := cresp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create topic: error %d", code)
	}
	var parts [2]*partition
	for deadline := time.Now().Add(30 * time.Second); ; {
		parts[0], parts[1] = b.parts.get(topic, 0), b.parts.get(topic, 1)
		if parts[0] != nil && parts[1] != nil && parts[0].isLeader() && parts[1].isLeader() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the topic's partitions never came up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, p := range parts {
		holdAcks(t, p, b.cfg.NodeID)
	}

	// Two produces pipelined on one connection, by hand: a client sends
	// its produces on one connection but may not pipeline these two.
	nc, err := net.DialTimeout("tcp", b.Addr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	format := kmsg.NewRequestFormatter(kmsg.FormatterClientID("pipeline-test"))
	send := func(partition int32) {
		req := kmsg.NewPtrProduceRequest()
		req.Version = 9
		req.Acks, req.TimeoutMillis = -1, 30_000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = partition
		rp.Records = MakeTestBatch(-1, 0, 0, false, "v")
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		if _, err := nc.Write(format.AppendRequest(nil, req, partition)); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		corr int32
		code int16
		err  error
	}
	answers := make(chan result, 2)
	go func() {
		for range 2 {
			var size [4]byte
			if _, err := io.ReadFull(nc, size[:]); err != nil {
				answers <- result{err: err}
				return
			}
			frame := make([]byte, binary.BigEndian.Uint32(size[:]))
			if _, err := io.ReadFull(nc, frame); err != nil {
				answers <- result{err: err}
				return
			}
			resp := kmsg.NewPtrProduceResponse()
			resp.Version = 9
			if len(frame) < 5 {
				answers <- result{err: errors.New("short response")}
				return
			}
			// The correlation id, then the flexible header's empty
			// tagged fields.
			if err := resp.ReadFrom(frame[5:]); err != nil {
				answers <- result{err: err}
				return
			}
			answers <- result{corr: int32(binary.BigEndian.Uint32(frame)), code: resp.Topics[0].Partitions[0].ErrorCode}
		}
	}()
	send(0)
	pollUntil(t, "the first produce appended", func() bool { return parts[0].log.EndOffset() == 1 })
	send(1)
	pollUntil(t, "the second produce queued behind the first", func() bool {
		if parts[1].log.EndOffset() != 1 {
			return false
		}
		b.connsMu.Lock()
		defer b.connsMu.Unlock()
		for c := range b.conns {
			if len(c.queue) == 1 {
				return true
			}
		}
		return false
	})

	// Acknowledge the first only.
	pollUntil(t, "the first append durable", func() bool {
		parts[0].mu.Lock()
		defer parts[0].mu.Unlock()
		return parts[0].durableEnd == 1
	})
	parts[0].followerFetched(99, 1, time.Now())
	select {
	case r := <-answers:
		if r.err != nil || r.corr != 0 || r.code != 0 {
			t.Fatalf("first answer: correlation id %d, error code %d, %v; want the first produce's, acknowledged", r.corr, r.code, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first produce's response was held back while the second waits for its acknowledgement")
	}

	pollUntil(t, "the second append durable", func() bool {
		parts[1].mu.Lock()
		defer parts[1].mu.Unlock()
		return parts[1].durableEnd == 1
	})
	parts[1].followerFetched(99, 1, time.Now())
	if r := <-answers; r.err != nil || r.corr != 1 || r.code != 0 {
		t.Fatalf("second answer: correlation id %d, error code %d, %v; want the second produce's, acknowledged", r.corr, r.code, r.err)
	}
}

// pollUntil polls cond until it holds, failing the test after a deadline.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
