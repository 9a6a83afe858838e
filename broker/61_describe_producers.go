package broker

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeProducers v0: per partition, the producers the partition's
// producer state holds (those not yet expired by
// producer.id.expiration.ms): id, epoch, last sequence written at that
// epoch (-1 when none), time of the last batch or marker (-1 when none;
// the append time, where Kafka keeps the batch's max timestamp),
// coordinator epoch of the last marker (-1 before any) and the first
// offset of the open transaction (-1 when none). Kafka's
// kafka-transactions describe-producers and find-hanging use it. Unknown
// partitions are UNKNOWN_TOPIC_OR_PARTITION, ones this broker does not
// lead NOT_LEADER_OR_FOLLOWER.
// With an authorizer a topic needs READ (TOPIC_AUTHORIZATION_FAILED).

func init() { register(61, 0, 0, handleDescribeProducers) }

func handleDescribeProducers(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.DescribeProducersRequest)
	resp := r.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		denied := !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, rt.Topic)
		for _, idx := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = idx
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, code := c.b.leaderPartition(rt.Topic, idx)
			sp.ErrorCode = code
			if code == 0 {
				for _, e := range p.log.Producers() {
					ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
					ap.ProducerID = e.ProducerID
					ap.ProducerEpoch = int32(e.Epoch)
					ap.LastSequence = e.LastSeq()
					ap.LastTimestamp = e.LastTimestamp
					if ap.LastTimestamp == math.MinInt64 {
						ap.LastTimestamp = -1
					}
					ap.CoordinatorEpoch = e.CoordinatorEpoch
					ap.CurrentTxnStartOffset = e.TxnFirstOffset
					sp.ActiveProducers = append(sp.ActiveProducers, ap)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp)
}
