package broker_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// DeleteRecords moves the log start offset, survives a restart, and sends
// consumers below it back to their reset policy.
func TestDeleteRecords(t *testing.T) {
	dir := t.TempDir()
	b := testutil.StartBroker(t, broker.Config{DataDir: dir, SegmentBytes: 1024, GroupInitialRebalanceDelay: -1})
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	createTopic(t, adm, "dr", 2, nil)
	var recs []peerRecord
	for i := range 100 {
		recs = append(recs, peerRecord{Partition: 0, Value: fmt.Appendf(nil, "p0 record %d", i)})
	}
	for i := range 10 {
		recs = append(recs, peerRecord{Partition: 1, Value: fmt.Appendf(nil, "p1 record %d", i)})
	}
	// One batch a record, so the log has many segments to delete.
	cl := newClient(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, r := range recs {
		if err := cl.ProduceSync(ctx, toKgo("dr", r)).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	deleteRecords := func(p int32, at int64) kadm.DeleteRecordsResponse {
		t.Helper()
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: "dr", Partition: p, At: at})
		rs, err := adm.DeleteRecords(ctx, offs)
		if err != nil {
			t.Fatalf("delete records: %v", err)
		}
		r, err := rs.On("dr", p, nil)
		if err != nil {
			t.Fatalf("delete records: %v", err)
		}
		return r
	}
	if r := deleteRecords(0, 40); r.Err != nil || r.LowWatermark != 40 {
		t.Fatalf("delete p0 below 40: %+v", r)
	}
	if r := deleteRecords(0, 30); r.Err != nil || r.LowWatermark != 40 {
		t.Fatalf("delete p0 below 30 after 40: %+v; want no change", r)
	}
	if r := deleteRecords(0, 101); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete p0 past the high watermark: %+v", r)
	}
	if r := deleteRecords(1, -1); r.Err != nil || r.LowWatermark != 10 {
		t.Fatalf("delete p1 to the high watermark: %+v", r)
	}
	// kadm does not send for a partition it does not know; go direct.
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "dr"
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = 5, 0
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	raw, err := newClient(t, b.Addr()).Broker(0).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if p := raw.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]; kerr.ErrorForCode(p.ErrorCode) != kerr.UnknownTopicOrPartition || p.LowWatermark != -1 {
		t.Fatalf("delete on a missing partition: %+v", p)
	}
	checkStart := func(b *broker.Broker, want int64) {
		t.Helper()
		lo, err := newAdmin(t, b.Addr()).ListStartOffsets(ctx, "dr")
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := lo.Lookup("dr", 0); o.Offset != want {
			t.Fatalf("p0 start offset %d, want %d", o.Offset, want)
		}
	}
	checkStart(b, 40)

	// A fetch below the start is OFFSET_OUT_OF_RANGE with the new start.
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis = 0
	fetch.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "dr"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition = 0
	fp.FetchOffset = 10
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	v12 := kversion.Stable() // by topic name, before Fetch v13's topic ids
	v12.SetMaxKeyVersion(1, 12)
	fresp, err := fetch.RequestWith(ctx, newClient(t, b.Addr(), kgo.MaxVersions(v12)))
	if err != nil {
		t.Fatal(err)
	}
	sp := fresp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(sp.ErrorCode); !errors.Is(err, kerr.OffsetOutOfRange) || sp.LogStartOffset != 40 {
		t.Fatalf("fetch at 10: %v, log start %d; want OFFSET_OUT_OF_RANGE and 40", err, sp.LogStartOffset)
	}

	// A group whose committed offset is below the start resets to it.
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "dr", Partition: 0, At: 10, LeaderEpoch: -1})
	if rs, err := adm.CommitOffsets(ctx, "below", offs); err != nil || rs.Error() != nil {
		t.Fatalf("commit: %v %v", err, rs.Error())
	}
	got := consumeAll(t, b.Addr(), "dr", 60,
		kgo.ConsumerGroup("below"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var p0 []*kgo.Record
	for _, r := range got {
		if r.Partition == 0 {
			p0 = append(p0, r)
		}
	}
	if len(p0) != 60 || p0[0].Offset != 40 || string(p0[0].Value) != "p0 record 40" {
		t.Fatalf("group below the start read %d records of p0 from offset %d; want 60 from 40", len(p0), p0[0].Offset)
	}

	// The start offset is checkpointed.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = testutil.StartBroker(t, broker.Config{DataDir: dir, SegmentBytes: 1024, GroupInitialRebalanceDelay: -1})
	checkStart(b, 40)
	if rs := consumeAll(t, b.Addr(), "dr", 60); rs[0].Offset != 40 || rs[0].Partition != 0 {
		t.Fatalf("after a restart p0 starts at %d, want 40", rs[0].Offset)
	}

	// Internal topics are not for deleting records from.
	offs = kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "__consumer_offsets", Partition: 0, At: -1})
	drs, err := newAdmin(t, b.Addr()).DeleteRecords(ctx, offs)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := drs.On("__consumer_offsets", 0, nil); !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Fatalf("delete records of __consumer_offsets: %+v", r)
	}
}
