package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets v1-v10. Special timestamps: -1 latest (the high watermark, or
// the last stable offset under read_committed), -2 earliest (the log start
// offset), -3 the record with the largest timestamp (v7+), -4 earliest local
// (v8+; equal to earliest, there is no tiered storage), -5 latest tiered
// (v9+; -1, there is no tiered storage). A timestamp >= 0 finds the first
// record at or after it, looking inside batches. With an authorizer each
// topic needs DESCRIBE (TOPIC_AUTHORIZATION_FAILED).

func init() { register(2, 1, 10, handleListOffsets) }

func handleListOffsets(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		denied := !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp = -1
			sp.Offset = -1
			sp.LeaderEpoch = -1
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, code := c.b.leaderPartition(rt.Topic, rp.Partition)
			if code != 0 {
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			epoch := p.epoch()
			if r.Version >= 4 && rp.CurrentLeaderEpoch >= 0 && rp.CurrentLeaderEpoch != epoch {
				sp.ErrorCode = kerr.FencedLeaderEpoch.Code
				if rp.CurrentLeaderEpoch > epoch {
					sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
				}
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			sp.LeaderEpoch = epoch
			switch ts := rp.Timestamp; {
			case ts == -1 && r.IsolationLevel == 1:
				sp.Offset = p.lastStableOffset()
			case ts == -1:
				sp.Offset = p.highWatermark()
			case ts == -2 || ts == -4:
				sp.Offset = p.log.StartOffset()
			case ts == -3:
				if off, mts, ok := p.log.MaxTimestamp(); ok {
					sp.Offset, sp.Timestamp = off, mts
				}
			case ts == -5:
				// No tiered storage: nothing is uploaded.
			case ts >= 0:
				// Only offsets a consumer of this isolation could fetch.
				fetchable := p.highWatermark()
				if r.IsolationLevel == 1 {
					fetchable = p.lastStableOffset()
				}
				off, fts, ok, err := p.log.OffsetForTimestamp(ts)
				switch {
				case err != nil:
					sp.ErrorCode = errorCode(err)
					c.b.logger.Error("offset for timestamp", "topic", rt.Topic, "partition", rp.Partition, "err", err)
				case ok && off < fetchable:
					sp.Offset, sp.Timestamp = off, fts
				}
			default:
				sp.ErrorCode = kerr.InvalidRequest.Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp)
}
