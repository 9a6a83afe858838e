package broker_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
)

// A data directory written by the single-node broker before replication
// (testdata/datadir-single-node, made by the code at main ca14191: topic
// "old" with two partitions, old-0..old-9 on partition 0, group "g"
// committed at 5) opens as the same single-node broker: its topics,
// records and offsets are there, and it takes new writes.
func TestSingleNodeDataDirCompatible(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/datadir-single-node")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for round := range 2 {
		b, err := broker.Start(ctx, broker.Config{DataDir: dir, Listen: "127.0.0.1:0", OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
		if err != nil {
			t.Fatalf("round %d: open: %v", round, err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("old"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"old": {0: kgo.NewOffset().AtStart()}}))
		if err != nil {
			t.Fatal(err)
		}
		adm := kadm.NewClient(cl)
		td, err := adm.ListTopics(ctx, "old")
		if err != nil || len(td["old"].Partitions) != 2 {
			t.Fatalf("round %d: topic old: %+v %v", round, td["old"], err)
		}
		want := []string{}
		for i := range 10 {
			want = append(want, fmt.Sprintf("old-%d", i))
		}
		for i := range round {
			want = append(want, fmt.Sprintf("new-%d", i))
		}
		var got []string
		for len(got) < len(want) {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("round %d: read %v, want %v", round, got, want)
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: read %v, want %v", round, got, want)
		}
		offs, err := adm.FetchOffsets(ctx, "g")
		if o, ok := offs.Lookup("old", 0); err != nil || !ok || o.At != 5 {
			t.Fatalf("round %d: group g's offset: %+v %v", round, o, err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: fmt.Appendf(nil, "new-%d", round)}).FirstErr(); err != nil {
			t.Fatalf("round %d: produce: %v", round, err)
		}
		cl.Close()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
