package broker_test

import (
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// A consumer given offsets that carry a leader epoch (as kadm's
// ListEndOffsets hands them out) validates them with OffsetForLeaderEpoch
// before fetching, and then reads exactly the records after them. Before
// the broker served it, franz-go failed such a consumer with "broker is
// too old".
func TestOffsetForLeaderEpochConsumeFromEpochOffsets(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	addr := b.Addr()
	adm := newAdmin(t, addr)
	const topic, parts = "epoch-offsets", 2
	createTopic(t, adm, topic, parts, nil)
	produceN(t, addr, topic, parts, 0, 10)

	ends, err := adm.ListEndOffsets(testContext(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	offsets := ends.KOffsets()
	for p, o := range offsets[topic] {
		if e := o.EpochOffset(); e.Epoch != 0 || e.Offset != 5 {
			t.Fatalf("end offset of partition %d: %+v, want offset 5 at epoch 0", p, e)
		}
	}
	produceN(t, addr, topic, parts, 10, 6)

	cl := newClient(t, addr, kgo.ConsumePartitions(offsets))
	got := pollRecords(t, cl, 6)
	for _, r := range got {
		v, _ := strconv.Atoi(string(r.Value))
		if v < 10 || r.Offset < 5 || r.LeaderEpoch != 0 {
			t.Errorf("consumed %s[%d]@%d (epoch %d) value %s: want only records after the listed ends",
				r.Topic, r.Partition, r.Offset, r.LeaderEpoch, r.Value)
		}
	}
	if n := len(got); n != 6 {
		t.Fatalf("consumed %d records, want 6", n)
	}

	// An offset past the end of its epoch is data loss (KIP-320): the
	// broker says epoch 0 ends at 8, so franz-go reports it and resumes
	// at 8.
	lost := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().At(20).WithEpoch(0)},
	}))
	ctx := testContext(t)
	var dataLoss *kgo.ErrDataLoss
	for dataLoss == nil {
		fs := lost.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no data loss reported before the deadline")
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.As(err, &dataLoss) {
				t.Fatalf("fetch: %v", err)
			}
		})
		if len(fs.Records()) > 0 {
			t.Fatalf("consumed %d records past the end of epoch 0", len(fs.Records()))
		}
	}
	if dataLoss.ResetTo != 8 || dataLoss.ConsumedTo != 20 {
		t.Fatalf("data loss %+v: want consumed to 20, reset to 8", dataLoss)
	}

	// SetOffsets with epochs goes through the same validation: rewound
	// to offset 6 at epoch 0, the consumer reads 6 and 7 again.
	set := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart()},
	}))
	pollRecords(t, set, 16)
	set.SetOffsets(map[string]map[int32]kgo.EpochOffset{topic: {0: {Epoch: 0, Offset: 6}, 1: {Epoch: 0, Offset: 6}}})
	next := map[int32]int64{0: 6, 1: 6}
	for _, r := range pollRecords(t, set, 4) {
		if r.Offset != next[r.Partition] {
			t.Errorf("after SetOffsets to 6: consumed %s[%d]@%d, want offset %d", r.Topic, r.Partition, r.Offset, next[r.Partition])
		}
		next[r.Partition] = r.Offset + 1
	}
}

// pollRecords polls cl until n records arrived, failing on a fetch error.
func pollRecords(t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	ctx := testContext(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(out), n)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s[%d]: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	return out
}

// epochQuery is one partition of an OffsetForLeaderEpoch request and the
// answer expected for it.
type epochQuery struct {
	topic          string
	partition      int32
	current, epoch int32
	wantErr        int16
	wantEpoch      int32
	wantEnd        int64
}

// offsetForLeaderEpoch sends one request at version v with every query
// and checks the answers.
func offsetForLeaderEpoch(t *testing.T, addr string, v int16, qs []epochQuery) {
	t.Helper()
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(kmsg.OffsetForLeaderEpoch.Int16(), v)
	cl := newClient(t, addr, kgo.MaxVersions(vs))
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	for _, q := range qs {
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = q.topic
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = q.partition, q.current, q.epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	// Sent to the one broker directly: the client would otherwise split
	// it by partition leader and drop unknown partitions.
	resp, err := req.RequestWith(testContext(t), cl.Broker(0))
	if err != nil {
		t.Fatalf("v%d: %v", v, err)
	}
	if resp.Version != v {
		t.Fatalf("answered at v%d, want v%d", resp.Version, v)
	}
	if len(resp.Topics) != len(qs) {
		t.Fatalf("v%d: %d topics answered, want %d", v, len(resp.Topics), len(qs))
	}
	for i, q := range qs {
		rt := resp.Topics[i]
		if rt.Topic != q.topic || len(rt.Partitions) != 1 || rt.Partitions[0].Partition != q.partition {
			t.Fatalf("v%d: answer %d is %+v, want %s[%d]", v, i, rt, q.topic, q.partition)
		}
		rp := rt.Partitions[0]
		got := fmt.Sprintf("error %v epoch %d end %d", kerr.ErrorForCode(rp.ErrorCode), rp.LeaderEpoch, rp.EndOffset)
		want := fmt.Sprintf("error %v epoch %d end %d", kerr.ErrorForCode(q.wantErr), q.wantEpoch, q.wantEnd)
		if got != want {
			t.Errorf("v%d: %s[%d] current %d epoch %d: %s, want %s", v, q.topic, q.partition, q.current, q.epoch, got, want)
		}
	}
}

// Raw OffsetForLeaderEpoch at every served version, before and after a
// restart: the current epoch (0 on one node) ends at the log end; a
// current leader epoch ahead of the partition's is UNKNOWN_LEADER_EPOCH;
// an epoch the partition never had is undefined; unknown partitions and
// topics are UNKNOWN_TOPIC_OR_PARTITION. The epoch history survives the
// restart, and the answer follows appends.
func TestOffsetForLeaderEpochAnswers(t *testing.T) {
	dir := t.TempDir()
	b := testutil.StartBroker(t, broker.Config{DataDir: dir})
	const topic = "epoch-answers"
	createTopic(t, newAdmin(t, b.Addr()), topic, 2, nil)
	produceN(t, b.Addr(), topic, 2, 0, 10) // 5 per partition
	unknown := kerr.UnknownTopicOrPartition.Code
	queries := func(end int64) []epochQuery {
		return []epochQuery{
			{topic, 0, -1, 0, 0, 0, end},
			{topic, 1, 0, 0, 0, 0, end},
			{topic, 0, 1, 0, kerr.UnknownLeaderEpoch.Code, -1, -1},
			{topic, 0, 0, 1, 0, -1, -1},
			{topic, 1, -1, -1, 0, -1, -1},
			{topic, 2, -1, 0, unknown, -1, -1},
			{"no-such-topic", 0, -1, 0, unknown, -1, -1},
		}
	}
	for v := int16(2); v <= 4; v++ {
		offsetForLeaderEpoch(t, b.Addr(), v, queries(5))
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = testutil.StartBroker(t, broker.Config{DataDir: dir})
	offsetForLeaderEpoch(t, b.Addr(), 4, queries(5))
	produceN(t, b.Addr(), topic, 2, 10, 4)
	offsetForLeaderEpoch(t, b.Addr(), 4, queries(7))
}
