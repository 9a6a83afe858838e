package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeLogDirs v0-v4: the broker's one log directory (DataDir/logs) and
// the size in bytes of every partition replica it holds there, all of them
// for a null topic list, else those named (a partition not held here is
// left out, as Kafka does). IsFuture is false, as there are no future
// replicas (no AlterReplicaLogDirs), and OffsetLag is 0 rather than how
// far a follower's log end is behind the high watermark. TotalBytes and
// UsableBytes (v4) are -1, unknown. The console's topic and broker sizes
// and kafka-log-dirs use it.

func init() { register(35, 0, 4, handleDescribeLogDirs) }

func handleDescribeLogDirs(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.DescribeLogDirsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	var want map[string]map[int32]bool // nil: every partition
	if r.Topics != nil {
		want = map[string]map[int32]bool{}
		for _, t := range r.Topics {
			if want[t.Topic] == nil {
				want[t.Topic] = map[int32]bool{}
			}
			for _, p := range t.Partitions {
				want[t.Topic][p] = true
			}
		}
	}
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = c.b.parts.logsDir()
	dir.TotalBytes, dir.UsableBytes = -1, -1
	byTopic := map[string]int{} // index in dir.Topics
	for _, p := range c.b.parts.all() {
		if want != nil && !want[p.topic][p.index] {
			continue
		}
		i, ok := byTopic[p.topic]
		if !ok {
			t := kmsg.NewDescribeLogDirsResponseDirTopic()
			t.Topic = p.topic
			dir.Topics = append(dir.Topics, t)
			i = len(dir.Topics) - 1
			byTopic[p.topic] = i
		}
		dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		dp.Partition = p.index
		dp.Size = p.log.Size()
		dir.Topics[i].Partitions = append(dir.Topics[i].Partitions, dp)
	}
	resp.Dirs = append(resp.Dirs, dir)
	return respond(resp)
}
