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

// pipelineTopic is the topic of the pipelining tests.
const pipelineTopic = "pipelined"

// startPipelineBroker starts a broker with pipelineTopic, of two
// partitions whose acks=all produces are held (holdAcks), created by a
// franz-go client.
func startPipelineBroker(t *testing.T) (*Broker, [2]*partition) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = pipelineTopic, 2, 1
	create.Topics = append(create.Topics, ct)
	cresp, err := create.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := cresp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create topic: error %d", code)
	}
	var parts [2]*partition
	pollUntil(t, "the topic's partitions up", func() bool {
		parts[0], parts[1] = b.parts.get(pipelineTopic, 0), b.parts.get(pipelineTopic, 1)
		return parts[0] != nil && parts[1] != nil && parts[0].isLeader() && parts[1].isLeader()
	})
	for _, p := range parts {
		holdAcks(t, p, b.cfg.NodeID)
	}
	return b, parts
}

// pipeline is one connection on which a test writes requests by hand, so
// that it knows they are pipelined, and reads the answers in a goroutine.
type pipeline struct {
	t       *testing.T
	nc      net.Conn
	format  *kmsg.RequestFormatter
	answers chan answer
}

// answer is a response frame's correlation id and body (after the
// header), or the error reading it.
type answer struct {
	corr int32
	body []byte
	err  error
}

func dialPipeline(t *testing.T, addr string) *pipeline {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	pl := &pipeline{t: t, nc: nc, format: kmsg.NewRequestFormatter(kmsg.FormatterClientID("pipeline-test")), answers: make(chan answer, 16)}
	go func() {
		for {
			var size [4]byte
			if _, err := io.ReadFull(nc, size[:]); err != nil {
				pl.answers <- answer{err: err}
				return
			}
			frame := make([]byte, binary.BigEndian.Uint32(size[:]))
			if _, err := io.ReadFull(nc, frame); err != nil {
				pl.answers <- answer{err: err}
				return
			}
			if len(frame) < 4 {
				pl.answers <- answer{err: errors.New("short response")}
				return
			}
			pl.answers <- answer{corr: int32(binary.BigEndian.Uint32(frame)), body: frame[4:]}
		}
	}()
	return pl
}

func (pl *pipeline) send(req kmsg.Request, corr int32) {
	pl.t.Helper()
	if _, err := pl.nc.Write(pl.format.AppendRequest(nil, req, corr)); err != nil {
		pl.t.Fatal(err)
	}
}

// sendProduce sends an acks=all Produce v9 of one record to partition
// of pipelineTopic.
func (pl *pipeline) sendProduce(partition int32, corr int32) {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks, req.TimeoutMillis = -1, 30_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = pipelineTopic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = MakeTestBatch(-1, 0, 0, false, "v")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	pl.send(req, corr)
}

// expect waits for the next answer, which must be corr's, within d.
func (pl *pipeline) expect(corr int32, d time.Duration, held string) answer {
	pl.t.Helper()
	select {
	case a := <-pl.answers:
		if a.err != nil || a.corr != corr {
			pl.t.Fatalf("answer with correlation id %d (%v), want %d", a.corr, a.err, corr)
		}
		return a
	case <-time.After(d):
		pl.t.Fatalf("no answer to request %d: %s", corr, held)
		return answer{}
	}
}

// produceCode decodes a Produce v9 answer's one partition error code.
func produceCode(t *testing.T, a answer) int16 {
	t.Helper()
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 9
	// The flexible response header's empty tagged fields come first.
	if len(a.body) < 1 {
		t.Fatal("empty produce response")
	}
	if err := resp.ReadFrom(a.body[1:]); err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// queuedBehind polls until a connection of b has n requests queued
// behind the one its writer is finishing.
func queuedBehind(t *testing.T, b *Broker, n int) {
	t.Helper()
	pollUntil(t, "requests queued behind the one being finished", func() bool {
		b.connsMu.Lock()
		defer b.connsMu.Unlock()
		for c := range b.conns {
			if len(c.queue) == n {
				return true
			}
		}
		return false
	})
}

// release acknowledges p's appends up to end, once they are durable.
func release(t *testing.T, p *partition, end int64) {
	t.Helper()
	pollUntil(t, "the appends durable", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.durableEnd >= end
	})
	p.followerFetched(99, end, time.Now())
}

// Produce responses are written in request order, and the writer holds a
// response back while more requests are queued so that they share a
// write. A Produce still waiting for its acknowledgement must not hold
// back the responses before it: here the first of two pipelined produces
// is acknowledged while the second waits, and its response must reach the
// client before the second is acknowledged.
func TestPipelinedProduceResponseNotHeldByLaterOne(t *testing.T) {
	b, parts := startPipelineBroker(t)
	pl := dialPipeline(t, b.Addr())
	pl.sendProduce(0, 0)
	pollUntil(t, "the first produce appended", func() bool { return parts[0].log.EndOffset() == 1 })
	pl.sendProduce(1, 1)
	pollUntil(t, "the second produce appended", func() bool { return parts[1].log.EndOffset() == 1 })
	queuedBehind(t, b, 1)

	release(t, parts[0], 1)
	if code := produceCode(t, pl.expect(0, 10*time.Second, "held back while the second produce waits for its acknowledgement")); code != 0 {
		t.Fatalf("first produce: error %d", code)
	}
	release(t, parts[1], 1)
	if code := produceCode(t, pl.expect(1, 30*time.Second, "the second produce never acknowledged")); code != 0 {
		t.Fatalf("second produce: error %d", code)
	}
}

// The same for the other requests whose answer may wait: a Fetch's long
// poll must not hold back the answers before it. A held Produce queues a
// Metadata request and a Fetch that waits up to 20 s for data behind it;
// once the Produce is acknowledged, its answer and the Metadata answer
// must arrive while the Fetch still waits (the broker's close ends it).
func TestPipelinedResponsesNotHeldByFetchLongPoll(t *testing.T) {
	b, parts := startPipelineBroker(t)
	pl := dialPipeline(t, b.Addr())
	pl.sendProduce(0, 0)
	pollUntil(t, "the produce appended", func() bool { return parts[0].log.EndOffset() == 1 })
	pl.send(kmsg.NewPtrMetadataRequest(), 1)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 11
	fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = 20_000, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = pipelineTopic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 1, 0, 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	pl.send(fetch, 2)
	queuedBehind(t, b, 2)

	release(t, parts[0], 1)
	if code := produceCode(t, pl.expect(0, 10*time.Second, "the produce's answer held back")); code != 0 {
		t.Fatalf("produce: error %d", code)
	}
	pl.expect(1, 10*time.Second, "the metadata answer held back while the fetch waits for data")
	select {
	case a := <-pl.answers:
		t.Fatalf("answer %d (%v) before the fetch's wait for data ended", a.corr, a.err)
	default:
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
