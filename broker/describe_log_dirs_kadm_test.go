package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Through kadm (the console's client), DescribeLogDirs reports the one log directory with the size of every
// partition the broker holds, and only the partitions asked for when some
// are named.
func TestDescribeLogDirsThroughKadm(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	addr := b.Addr()
	adm := newAdmin(t, addr)
	ctx := testContext(t)
	createTopic(t, adm, "sized", 2, nil)
	createTopic(t, adm, "other", 1, nil)
	cl := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	for range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "sized", Partition: 1, Value: make([]byte, 1000)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("%d brokers answered, want 1: %v", len(all), all)
	}
	for _, dirs := range all {
		if err := dirs.Error(); err != nil {
			t.Fatal(err)
		}
		if len(dirs) != 1 {
			t.Fatalf("%d log dirs, want 1: %v", len(dirs), dirs)
		}
		p0, ok0 := dirs.LookupPartition("sized", 0)
		p1, ok1 := dirs.LookupPartition("sized", 1)
		if !ok0 || !ok1 || p0.Size != 0 || p1.Size < 10*1000 {
			t.Errorf("sized: partition 0 %v %d bytes (want 0), partition 1 %v %d bytes (want >= 10,000)", ok0, p0.Size, ok1, p1.Size)
		}
		if _, ok := dirs.LookupPartition("other", 0); !ok {
			t.Errorf("other/0 missing from a describe of every partition")
		}
	}

	some, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{"sized": {1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, dirs := range some {
		dirs.EachPartition(func(p kadm.DescribedLogDirPartition) {
			n++
			if p.Topic != "sized" || p.Partition != 1 {
				t.Errorf("asked for sized/1, got %s/%d", p.Topic, p.Partition)
			}
		})
	}
	if n != 1 {
		t.Errorf("asked for sized/1, got %d partitions", n)
	}
}
