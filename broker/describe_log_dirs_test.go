package broker_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// DescribeLogDirs lists the broker's one log directory with the size of
// each partition it holds (all of them, or those asked for), and the file
// system's size.
func TestDescribeLogDirs(t *testing.T) {
	dir := t.TempDir()
	b := testutil.StartBroker(t, broker.Config{DataDir: dir})
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("ld"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "ld"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "other"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil || len(md.Brokers) != 1 {
		t.Fatalf("metadata: %+v %v", md, err)
	}
	self := md.Brokers[0].NodeID
	describe := func(topics []kmsg.DescribeLogDirsRequestTopic) map[string]int64 {
		t.Helper()
		req := kmsg.NewPtrDescribeLogDirsRequest()
		req.Topics = topics
		// To the broker itself: kgo's sharding of the request merges
		// the answers and drops the sizes of the directories.
		resp, err := req.RequestWith(ctx, cl.Broker(int(self)))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Dirs) != 1 || resp.Dirs[0].ErrorCode != 0 || resp.Dirs[0].Dir != filepath.Join(dir, "logs") {
			t.Fatalf("dirs %+v", resp.Dirs)
		}
		d := resp.Dirs[0]
		if d.TotalBytes <= 0 || d.UsableBytes < 0 || d.UsableBytes > d.TotalBytes {
			t.Fatalf("dir size: total %d usable %d", d.TotalBytes, d.UsableBytes)
		}
		sizes := map[string]int64{}
		for _, rt := range d.Topics {
			for _, p := range rt.Partitions {
				if p.IsFuture || p.OffsetLag != 0 {
					t.Fatalf("%s-%d: %+v", rt.Topic, p.Partition, p)
				}
				sizes[fmt.Sprintf("%s-%d", rt.Topic, p.Partition)] = p.Size
			}
		}
		return sizes
	}
	all := describe(nil)
	// The internal topics' partitions are there too.
	if len(all) < 3 || all["ld-0"] <= 0 || all["ld-1"] != 0 || all["other-0"] != 0 {
		t.Fatalf("every partition: %v", all)
	}
	rt := kmsg.NewDescribeLogDirsRequestTopic()
	rt.Topic, rt.Partitions = "ld", []int32{0}
	one := describe([]kmsg.DescribeLogDirsRequestTopic{rt})
	if len(one) != 1 || one["ld-0"] != all["ld-0"] {
		t.Fatalf("ld-0 alone: %v", one)
	}
}
