package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeLogDirs v0-v4: the broker's one log directory (DATA_DIR/logs)
// with the size of every partition replica it holds, or of those asked
// for (null topics: all), and from v4 the file system's total and usable
// bytes (-1 where the platform does not say). Every replica is current:
// there are no future replicas (AlterReplicaLogDirs moves between
// directories, and a broker has one), so the offset lag is 0. Kafka's
// admin client asks each broker for its own replicas; kafka-reassign-
// partitions and kafka-log-dirs read it.
//
// It needs DESCRIBE on the cluster, as Kafka's: denied, the response names
// no directory, with CLUSTER_AUTHORIZATION_FAILED from v3 (earlier
// versions have no error code).

func init() { register(35, 0, 4, handleDescribeLogDirs) }

func handleDescribeLogDirs(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.DescribeLogDirsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if !c.allowedCluster(kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return respond(resp)
	}
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = c.b.parts.logsDir()
	dir.TotalBytes, dir.UsableBytes = diskUsage(dir.Dir)

	var wanted map[topicPartition]bool
	if r.Topics != nil {
		wanted = make(map[topicPartition]bool)
		for _, rt := range r.Topics {
			for _, p := range rt.Partitions {
				wanted[topicPartition{rt.Topic, p}] = true
			}
		}
	}
	byTopic := map[string][]kmsg.DescribeLogDirsResponseDirTopicPartition{}
	for _, p := range c.b.parts.all() {
		if wanted != nil && !wanted[topicPartition{p.topic, p.index}] {
			continue
		}
		rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		rp.Partition = p.index
		rp.Size = p.log.Size()
		byTopic[p.topic] = append(byTopic[p.topic], rp)
	}
	topics := make([]string, 0, len(byTopic))
	for t := range byTopic {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		rt := kmsg.NewDescribeLogDirsResponseDirTopic()
		rt.Topic = t
		rt.Partitions = byTopic[t]
		slices.SortFunc(rt.Partitions, func(a, b kmsg.DescribeLogDirsResponseDirTopicPartition) int { return int(a.Partition - b.Partition) })
		dir.Topics = append(dir.Topics, rt)
	}
	resp.Dirs = append(resp.Dirs, dir)
	return respond(resp)
}
