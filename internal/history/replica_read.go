package history

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// debuggingConsumer is the replica id of Kafka's debugging consumer: a
// Fetch with it may be served by a follower, up to its log end rather
// than the high watermark.
const debuggingConsumer = -2

// ReadReplica reads broker's own copy of topic/partition, from its log
// start to its end, with Fetch requests sent to addr alone as Kafka's
// debugging consumer (replica id -2), and returns it with the high
// watermark that broker reported. A broker that serves that id as a plain
// consumer (the single-node broker) is read up to its high watermark. The
// result feeds CompareReplicas.
func ReadReplica(ctx context.Context, addr string, broker int32, topic string, partition int32, opts ...kgo.Opt) (Replica, int64, error) {
	rep := Replica{Broker: broker}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		return rep, 0, fmt.Errorf("history: replica client: %w", err)
	}
	defer cl.Close()
	// Fetch v13+ names topics by id.
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err == nil {
		err = topics[topic].Err
	}
	if err != nil {
		return rep, 0, fmt.Errorf("history: replica %d: topic %s: %w", broker, topic, err)
	}
	id := topics[topic].ID
	seed := cl.SeedBrokers()[0]

	var hw int64
	next, first := int64(0), true
	for {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = debuggingConsumer
		req.ReplicaState.ID = debuggingConsumer
		req.ReplicaState.Epoch = -1
		req.MaxWaitMillis = 0
		req.MaxBytes = 8 << 20
		req.SessionEpoch = -1 // no fetch session
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, next, 1<<20
		rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)

		raw, err := seed.Request(ctx, req)
		if err != nil {
			return rep, 0, fmt.Errorf("history: replica %d: fetch %s/%d@%d: %w", broker, topic, partition, next, err)
		}
		resp := raw.(*kmsg.FetchResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return rep, 0, fmt.Errorf("history: replica %d: fetch: %w", broker, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return rep, 0, fmt.Errorf("history: replica %d: fetch answered %d topics for one", broker, len(resp.Topics))
		}
		p := &resp.Topics[0].Partitions[0]
		if first && errors.Is(kerr.ErrorForCode(p.ErrorCode), kerr.OffsetOutOfRange) && p.LogStartOffset > next {
			next, first = p.LogStartOffset, false // retention moved the start
			continue
		}
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return rep, 0, fmt.Errorf("history: replica %d: fetch %s/%d@%d: %w", broker, topic, partition, next, err)
		}
		if first {
			rep.LogStart = max(p.LogStartOffset, 0)
			if next < rep.LogStart {
				next = rep.LogStart
				first = false
				continue
			}
			first = false
		}
		hw = p.HighWatermark
		fp, after := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			Topic: topic, Partition: partition, Offset: next, IsolationLevel: kgo.ReadUncommitted(),
		}, p, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			return rep, 0, fmt.Errorf("history: replica %d: decode %s/%d@%d: %w", broker, topic, partition, next, fp.Err)
		}
		for _, r := range fp.Records {
			rep.Records = append(rep.Records, Record{Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)})
		}
		if after <= next { // nothing more: the log's end
			rep.LogEnd = next
			return rep, hw, nil
		}
		next = after
	}
}
