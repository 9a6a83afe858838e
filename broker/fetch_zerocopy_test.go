package broker_test

import (
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// checkFetchedBatches parses a partition's uncompressed record batches as
// a client would and checks each is whole (its CRC holds) and holds, at offset o,
// the value "record o" the test produced there.
func checkFetchedBatches(t *testing.T, recs []byte) int {
	t.Helper()
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	n := 0
	for len(recs) > 0 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(recs); err != nil {
			t.Fatalf("torn batch: %v", err)
		}
		size := int(b.Length) + 12
		if crc32.Checksum(recs[21:size], castagnoli) != uint32(b.CRC) {
			t.Fatalf("batch at offset %d fails its CRC", b.FirstOffset)
		}
		raw := b.Records
		for i := range b.NumRecords {
			var r kmsg.Record
			l, used := varint(raw)
			if used <= 0 || int(l)+used > len(raw) {
				t.Fatalf("batch at offset %d: bad record length", b.FirstOffset)
			}
			if err := r.ReadFrom(raw[:used+int(l)]); err != nil {
				t.Fatalf("batch at offset %d: %v", b.FirstOffset, err)
			}
			raw = raw[used+int(l):]
			off := b.FirstOffset + int64(r.OffsetDelta)
			if want := fmt.Sprint("record ", off); string(r.Value) != want {
				t.Fatalf("offset %d (record %d of its batch) holds %q, want %q", off, i, r.Value, want)
			}
			n++
		}
		recs = recs[size:]
	}
	return n
}

func varint(b []byte) (int64, int) {
	var x uint64
	for i := 0; i < len(b) && i < 10; i++ {
		x |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return int64(x>>1) ^ -int64(x&1), i + 1
		}
	}
	return 0, 0
}

// TestFetchDuringSegmentDeletion fetches, over TCP with franz-go, from a
// log whose segments DeleteRecords deletes meanwhile: the records are sent
// from the segment files, and every batch that arrives is whole and holds
// what was written at its offsets — never bytes of a deleted or reused
// file. Fetches below the new log start get OFFSET_OUT_OF_RANGE.
func TestFetchDuringSegmentDeletion(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{DataDir: t.TempDir(), SegmentBytes: 2048, GroupInitialRebalanceDelay: -1})
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	createTopic(t, adm, "zc", 1, nil)
	const total = 600
	cl := newClient(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	for i := 0; i < total; i += 3 {
		var rs []*kgo.Record
		for j := i; j < i+3; j++ {
			rs = append(rs, &kgo.Record{Topic: "zc", Value: fmt.Appendf(nil, "record %d", j)})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	deleted := make(chan struct{})
	wg.Go(func() {
		defer close(deleted)
		for at := int64(20); at < total; at += 20 {
			offs := kadm.Offsets{}
			offs.Add(kadm.Offset{Topic: "zc", Partition: 0, At: at})
			if _, err := adm.DeleteRecords(ctx, offs); err != nil {
				t.Errorf("delete records below %d: %v", at, err)
				return
			}
		}
	})

	td, err := adm.ListTopics(ctx, "zc")
	if err != nil {
		t.Fatal(err)
	}
	fetcher := newClient(t, b.Addr())
	got := 0
	for off := int64(0); ; {
		select {
		case <-deleted:
			if got == 0 {
				t.Fatal("no fetch returned records while segments were deleted")
			}
			return
		default:
		}
		req := kmsg.NewPtrFetchRequest()
		req.MaxBytes = 1 << 20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "zc"
		rt.TopicID = td["zc"].ID // Fetch v13+ names topics by id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset = off
		rp.PartitionMaxBytes = int32(512 + off%4096)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		raw, err := fetcher.Broker(0).Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		resp := raw.(*kmsg.FetchResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("fetch answered %d topics", len(resp.Topics))
		}
		p := resp.Topics[0].Partitions[0]
		switch err := kerr.ErrorForCode(p.ErrorCode); {
		case errors.Is(err, kerr.OffsetOutOfRange):
			off = p.LogStartOffset
			continue
		case err != nil:
			t.Fatalf("fetch at %d: %v", off, err)
		}
		got += checkFetchedBatches(t, p.RecordBatches)
		// Start over from the log start, so reads keep landing on the
		// segments being deleted.
		off = p.LogStartOffset + int64(got%7)
	}
}
