package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords v0-v2. Moves each partition's log start offset forward to
// the requested offset, or to the high watermark for -1, checkpoints it
// (so it survives a restart) and deletes the segments wholly below it; the
// response carries the new low watermark. An offset above the high
// watermark, or negative other than -1, is OFFSET_OUT_OF_RANGE; one below
// the current start changes nothing. A fetch below the new start gets
// OFFSET_OUT_OF_RANGE, and the consumer resets by its policy. Internal
// topics are refused (INVALID_TOPIC_EXCEPTION), as Kafka refuses them. On
// one node there are no followers to wait for, so TimeoutMillis is unused.
// With an authorizer a topic needs DELETE (TOPIC_AUTHORIZATION_FAILED).

func init() { register(21, 0, 2, handleDeleteRecords) }

func handleDeleteRecords(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	b := c.b
	for _, rt := range r.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		internal := b.internalTopic(rt.Topic)
		denied := !c.allowed(kmsg.ACLOperationDelete, kmsg.ACLResourceTypeTopic, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else {
				sp.ErrorCode = b.deleteRecords(rt.Topic, rp.Partition, rp.Offset, internal, &sp.LowWatermark)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp)
}

// deleteRecords moves one partition's log start offset to off and sets
// *low to the start offset after; it returns the Kafka error code.
func (b *Broker) deleteRecords(topic string, partition int32, off int64, internal bool, low *int64) int16 {
	if internal {
		return kerr.InvalidTopicException.Code
	}
	p, code := b.leaderPartition(topic, partition)
	if code != 0 {
		return code
	}
	hw := p.highWatermark()
	if off == -1 {
		off = hw
	}
	if off < 0 || off > hw {
		*low = p.log.StartOffset()
		return kerr.OffsetOutOfRange.Code
	}
	if err := p.log.SetStartOffset(off); err != nil {
		b.logger.Error("delete records", "topic", topic, "partition", partition, "offset", off, "err", err)
		return errorCode(err)
	}
	*low = p.log.StartOffset()
	return 0
}
