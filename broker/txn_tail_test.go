package broker_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// endKey is the key of the records readCommittedToEnd appends.
const endKey = "runnel-test-end"

// readCommittedToEnd reads on with cons, a read_committed consumer of
// topic, once every transaction writing to it has ended, until it has
// read everything below the end of every partition, and calls each for
// every record it reads. It waits for the broker's last stable offsets
// (ListOffsets, read_committed) to reach the high watermarks, then appends
// a record keyed endKey to each partition and reads until all of them
// have arrived.
//
// The LastStableOffset of the fetched partitions cannot tell how far the
// consumer has read: franz-go hands over no fetch in which no partition
// has a record, so a partition whose tail is aborted records and control
// batches never shows its final LSO to a consumer that has read
// everything before them.
func readCommittedToEnd(ctx context.Context, t testing.TB, addr, topic string, cons *kgo.Client, each func(*kgo.Record)) {
	t.Helper()
	adm := newAdmin(t, addr)
	var parts []int32
	for {
		behind, ps := unstablePartitions(ctx, t, adm, topic)
		parts = ps
		if behind == "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s with every transaction ended; transactions not complete: %s", behind, incompleteTxns(t, adm))
		case <-time.After(10 * time.Millisecond):
		}
	}

	pcl := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	waiting := map[int32]bool{}
	for _, p := range parts {
		if err := pcl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Key: []byte(endKey)}).FirstErr(); err != nil {
			t.Fatalf("append the end record to %s[%d]: %v", topic, p, err)
		}
		waiting[p] = true
	}
	for len(waiting) > 0 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read to the end of %s before the deadline, except on partitions %v", topic, waiting)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == endKey {
				delete(waiting, r.Partition)
				return
			}
			each(r)
		})
	}
}

// unstablePartitions describes the partitions of topic whose last stable
// offset is below the high watermark ("" when there are none), and lists
// its partitions.
func unstablePartitions(ctx context.Context, t testing.TB, adm *kadm.Client, topic string) (string, []int32) {
	t.Helper()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if ctx.Err() != nil {
		return "the deadline passed", nil
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	lsos, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = lsos.Error()
	}
	if ctx.Err() != nil {
		return "the deadline passed", nil
	}
	if err != nil {
		t.Fatalf("list last stable offsets of %s: %v", topic, err)
	}
	var behind []string
	var parts []int32
	ends.Each(func(o kadm.ListedOffset) {
		parts = append(parts, o.Partition)
		if lso, ok := lsos.Lookup(topic, o.Partition); !ok || lso.Offset < o.Offset {
			behind = append(behind, fmt.Sprintf("partition %d: last stable offset %d of %d", o.Partition, lso.Offset, o.Offset))
		}
	})
	slices.Sort(parts)
	slices.Sort(behind)
	return strings.Join(behind, ", "), parts
}

// incompleteTxns describes the transactional ids that have a transaction
// open or completing, for a failure message.
func incompleteTxns(t testing.TB, adm *kadm.Client) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	listed, err := adm.ListTransactions(ctx, nil, []string{"Ongoing", "PrepareCommit", "PrepareAbort"})
	if err != nil {
		return fmt.Sprintf("(list transactions: %v)", err)
	}
	ids := listed.TransactionalIDs()
	if len(ids) == 0 {
		return "none"
	}
	described, err := adm.DescribeTransactions(ctx, ids...)
	if err != nil {
		return fmt.Sprintf("%v (describe transactions: %v)", ids, err)
	}
	var out []string
	for _, d := range described.Sorted() {
		out = append(out, fmt.Sprintf("%s: producer %d epoch %d %s %v", d.TxnID, d.ProducerID, d.ProducerEpoch, d.State, d.Topics))
	}
	return strings.Join(out, "; ")
}

// A read_committed consumer that has read a partition's last committed
// record, after which only an aborted transaction was written, reads on
// to the end: the test's reader does not wait for a fetch to report the
// new last stable offset, which franz-go never hands over (the fetches
// after it hold no record), as TestTxnReadCommittedUnderChurn once did.
func TestReadCommittedToEndPastAbortedTail(t *testing.T) {
	const topic = "abortedtail"
	b := testutil.StartBroker(t, txnBrokerConfig())
	addr := b.Addr()
	createTopic(t, newAdmin(t, addr), topic, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	prod := txnProducer(t, addr, "abortedtail")
	if err := produceTxn(ctx, prod, topic, true, map[int32][]string{0: {"a"}, 1: {"x"}}); err != nil {
		t.Fatal(err)
	}
	cons := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(50*time.Millisecond))
	var got []string
	for len(got) < 2 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %v before the deadline", got)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if err := produceTxn(ctx, prod, topic, false, map[int32][]string{0: {"b", "c"}}); err != nil {
		t.Fatal(err)
	}
	readCommittedToEnd(ctx, t, addr, topic, cons, func(r *kgo.Record) { got = append(got, string(r.Value)) })
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "x"}) {
		t.Fatalf("read %q; want the committed records a and x only", got)
	}
}
