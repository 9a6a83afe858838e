package broker_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// With direct writes a Produce request's partitions are appended at once
// (each append waits for the disk). Over TCP: one request for twelve
// partitions, and one naming a partition twice (appended one after the
// other, in request order), each with every batch at the offsets its
// response gives, read back in order.
func TestDirectWritesConcurrentAppends(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{DataDir: t.TempDir()})
	ctx := testContext(t)
	adm := newAdmin(t, b.Addr())
	const parts = 12
	createTopic(t, adm, "conc", parts, nil)
	td, err := adm.ListTopics(ctx, "conc")
	if err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, b.Addr())
	send := func(ids []int32, values func(k int) []string) *kmsg.ProduceResponse {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = "conc", td["conc"].ID
		for k, id := range ids {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = id
			rp.Records = broker.MakeTestBatch(-1, -1, -1, false, values(k)...)
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	value := func(p int32, k, i int) string { return fmt.Sprintf("p%d-entry%d-record%d", p, k, i) }

	// Every partition once, three rounds.
	want := make(map[int32][]string)
	for round := range 3 {
		ids := make([]int32, parts)
		for i := range ids {
			ids[i] = int32(i)
		}
		resp := send(ids, func(k int) []string {
			n := 1 + (k+round)%4
			vs := make([]string, n)
			for i := range vs {
				vs[i] = value(int32(k), round, i)
			}
			return vs
		})
		for k, sp := range resp.Topics[0].Partitions {
			if sp.ErrorCode != 0 || sp.Partition != int32(k) || sp.BaseOffset != int64(len(want[int32(k)])) {
				t.Fatalf("round %d: partition %d: error %d, base offset %d, want %d", round, sp.Partition, sp.ErrorCode, sp.BaseOffset, len(want[int32(k)]))
			}
			want[int32(k)] = append(want[int32(k)], make([]string, 1+(k+round)%4)...)
			for i := range 1 + (k+round)%4 {
				want[int32(k)][int(sp.BaseOffset)+i] = value(int32(k), round, i)
			}
		}
	}
	// Partition 5 twice in one request: the entries in request order.
	resp := send([]int32{5, 6, 5}, func(k int) []string { return []string{value(int32(5+k%2), 10+k, 0)} })
	ps := resp.Topics[0].Partitions
	if ps[0].ErrorCode != 0 || ps[2].ErrorCode != 0 || ps[2].BaseOffset != ps[0].BaseOffset+1 {
		t.Fatalf("partition 5 twice: %+v then %+v", ps[0], ps[2])
	}
	want[5] = append(want[5], value(5, 10, 0), value(5, 12, 0))
	want[6] = append(want[6], value(6, 11, 0))

	offsets := make(map[int32]kgo.Offset)
	for p := range int32(parts) {
		offsets[p] = kgo.NewOffset().At(0)
	}
	c := newClient(t, b.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"conc": offsets}))
	got := make(map[int32][]string)
	total := 0
	for _, vs := range want {
		total += len(vs)
	}
	for n := 0; n < total; {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != int64(len(got[r.Partition])) {
				t.Fatalf("partition %d: offset %d after %d records", r.Partition, r.Offset, len(got[r.Partition]))
			}
			got[r.Partition] = append(got[r.Partition], string(r.Value))
			n++
		})
	}
	for p := range int32(parts) {
		if fmt.Sprint(got[p]) != fmt.Sprint(want[p]) {
			t.Fatalf("partition %d: read %v, want %v", p, got[p], want[p])
		}
	}
}
