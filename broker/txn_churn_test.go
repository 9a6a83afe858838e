package broker_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// txnRecord is what a churn record's value encodes: the producer, its
// transaction, the record's place among that transaction's records on
// the partition, and how many there are.
type txnRecord struct {
	producer, txn, seq, count int
}

func (r txnRecord) value() string {
	return fmt.Sprintf("%d/%d/%d/%d", r.producer, r.txn, r.seq, r.count)
}

func parseTxnRecord(v string) (txnRecord, bool) {
	var r txnRecord
	_, err := fmt.Sscanf(v, "%d/%d/%d/%d", &r.producer, &r.txn, &r.seq, &r.count)
	return r, err == nil
}

// txnKey names one transaction.
type txnKey struct{ producer, txn int }

// Many transactional producers commit and abort at random while a
// read_committed consumer reads: it never sees an aborted record, and
// every committed transaction appears whole, in order on each partition.
func TestTxnReadCommittedUnderChurn(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("RUNNEL_CHURN_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (set RUNNEL_CHURN_SEED to repeat)", seed)
	const (
		topic      = "txchurn"
		partitions = 4
		producers  = 6
		runFor     = 8 * time.Second
	)
	b := testutil.StartBroker(t, txnBrokerConfig())
	addr := b.Addr()
	createTopic(t, newAdmin(t, addr), topic, partitions, nil)
	ctx := testContext(t)

	// The outcome of every transaction, and what each wrote where.
	var mu sync.Mutex
	outcome := map[txnKey]bool{}        // true: committed
	wrote := map[txnKey]map[int32]int{} // partition -> records
	stop := time.Now().Add(runFor)
	var wg sync.WaitGroup
	for p := range producers {
		rng := rand.New(rand.NewPCG(seed, uint64(p)))
		cl := txnProducer(t, addr, fmt.Sprintf("churn-%d", p), kgo.TransactionTimeout(10*time.Second))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; time.Now().Before(stop); n++ {
				if err := cl.BeginTransaction(); err != nil {
					t.Errorf("producer %d begin: %v", p, err)
					return
				}
				parts := map[int32]int{}
				for _, part := range rng.Perm(partitions)[:1+rng.IntN(partitions)] {
					parts[int32(part)] = 1 + rng.IntN(5)
				}
				mu.Lock()
				wrote[txnKey{p, n}] = parts
				mu.Unlock()
				var pending sync.WaitGroup
				var perr error
				var perrMu sync.Mutex
				for part, count := range parts {
					for i := range count {
						pending.Add(1)
						v := txnRecord{p, n, i, count}.value()
						cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: part, Value: []byte(v)}, func(_ *kgo.Record, err error) {
							if err != nil {
								perrMu.Lock()
								perr = err
								perrMu.Unlock()
							}
							pending.Done()
						})
					}
				}
				pending.Wait()
				commit := perr == nil && rng.IntN(3) > 0
				if perr != nil {
					t.Errorf("producer %d transaction %d: %v", p, n, perr)
				}
				if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
					t.Errorf("producer %d end transaction %d (commit %v): %v", p, n, commit, err)
					return
				}
				mu.Lock()
				outcome[txnKey{p, n}] = commit
				mu.Unlock()
			}
		}()
	}

	// The read_committed consumer runs alongside, checking as it goes
	// that each transaction's records on a partition arrive in order
	// with no gap.
	cons := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(50*time.Millisecond))
	type partTxn struct {
		part int32
		txnKey
	}
	seen := map[partTxn]int{} // records seen so far
	records := 0
	check := func(r *kgo.Record) {
		tr, ok := parseTxnRecord(string(r.Value))
		if !ok {
			t.Fatalf("%s[%d]@%d: value %q", topic, r.Partition, r.Offset, r.Value)
		}
		k := partTxn{r.Partition, txnKey{tr.producer, tr.txn}}
		if tr.seq != seen[k] {
			t.Fatalf("%s[%d]@%d: record %d of transaction %v after %d of its records", topic, r.Partition, r.Offset, tr.seq, k.txnKey, seen[k])
		}
		seen[k]++
		records++
	}
	for time.Now().Before(stop) && !t.Failed() {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := cons.PollFetches(pctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s[%d]: %v", topic, p, err)
			}
		})
		fs.EachRecord(check)
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// Read on to the end: with every transaction ended, the LSO is the
	// high watermark.
	readCommittedToEnd(ctx, t, addr, topic, cons, check)

	commits, aborts := 0, 0
	for k, committed := range outcome {
		if committed {
			commits++
		} else {
			aborts++
		}
		for part, count := range wrote[k] {
			got := seen[partTxn{part, k}]
			switch {
			case committed && got != count:
				t.Errorf("committed transaction %v: %d of its %d records on partition %d visible", k, got, count, part)
			case !committed && got != 0:
				t.Errorf("aborted transaction %v: %d records on partition %d visible", k, got, part)
			}
		}
	}
	for k := range seen {
		if _, ended := outcome[k.txnKey]; !ended {
			t.Errorf("transaction %v was never ended, yet its records on partition %d are visible", k.txnKey, k.part)
		}
	}
	t.Logf("%d transactions committed, %d aborted; %d records read", commits, aborts, records)
	if commits == 0 || aborts == 0 {
		t.Errorf("the run committed %d and aborted %d transactions; want some of each", commits, aborts)
	}
}
