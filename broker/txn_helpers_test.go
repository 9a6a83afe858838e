package broker_test

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
)

// Helpers for the transaction tests (txn_*_test.go).

// txnBrokerConfig is a broker for transaction tests: few internal
// partitions (start-up is quicker), a short initial rebalance delay, and
// a timeout check often enough for tests that wait on it.
func txnBrokerConfig() broker.Config {
	return broker.Config{
		GroupInitialRebalanceDelay:            20 * time.Millisecond,
		OffsetsTopicPartitions:                3,
		TransactionStateTopicPartitions:       3,
		TransactionAbortTimedOutCheckInterval: 50 * time.Millisecond,
	}
}

// txnProducer is a transactional franz-go producer with a short
// transaction timeout, closed when the test ends.
func txnProducer(t testing.TB, addr, txnID string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newClient(t, addr, append([]kgo.Opt{
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(2 * time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}, opts...)...)
}

// produceTxn produces records to partitions in one transaction, committing
// it when commit is set and aborting it otherwise.
func produceTxn(ctx context.Context, cl *kgo.Client, topic string, commit bool, values map[int32][]string) error {
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	for p, vs := range values {
		for _, v := range vs {
			r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				cl.EndTransaction(ctx, kgo.TryAbort)
				return err
			}
		}
	}
	return cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
}

// readAll consumes a topic from its start until it has read up to the
// end offsets (the last stable offsets under read_committed) known when
// it starts, and returns the values by partition.
func readAll(t testing.TB, addr, topic string, committed bool) map[int32][]string {
	t.Helper()
	ctx := testContext(t)
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	adm := newAdmin(t, addr)
	// The high watermarks: a read_committed reader gets there too once
	// no transaction is open.
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { want[o.Partition] = o.Offset })
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso),
		kgo.FetchMaxWait(100*time.Millisecond))
	got := map[int32][]string{}
	pos := map[int32]int64{}
	done := func() bool {
		for p, end := range want {
			if pos[p] < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %v of %v before the deadline", pos, want)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], string(r.Value))
		})
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			// Control batches and aborted records move the position
			// without being returned: the high watermark (or LSO) the
			// fetch reported says how far the reader is.
			if n := len(fp.Records); n > 0 {
				pos[fp.Partition] = max(pos[fp.Partition], fp.Records[n-1].Offset+1)
			}
			if committed {
				pos[fp.Partition] = max(pos[fp.Partition], fp.LastStableOffset)
			} else {
				pos[fp.Partition] = max(pos[fp.Partition], fp.HighWatermark)
			}
		})
	}
	return got
}

// isFenced reports whether err says the producer was fenced.
func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
