package broker_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// endTxnSent is a franz-go hook that reports each EndTxn request written
// to a broker.
type endTxnSent chan struct{}

func (s endTxnSent) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == int16(kmsg.EndTxn) && err == nil {
		select {
		case s <- struct{}{}:
		default:
		}
	}
}

// The broker is SIGKILLed with transactions open: some ongoing, some
// whose EndTxn(commit) has just been sent, after others committed or
// aborted. After a restart the open ones are completed or aborted,
// committed ones stay visible to read_committed consumers, none is
// visible in part, and the producers carry on after initialising again
// with the same transactional ids.
func TestTxnBrokerCrashMidTransaction(t *testing.T) {
	const (
		topic      = "txcrash"
		partitions = 3
	)
	dir := t.TempDir()
	c := startChild(t, dir, "127.0.0.1:0", childEnv+"_TXN=1")
	createTopic(t, newAdmin(t, c.addr), topic, partitions, nil)
	ctx := testContext(t)

	// Producers 0-1 end every transaction, 2-3 leave one open, 4-6
	// are killed right after sending a commit.
	const producers = 7
	role := func(p int) string {
		switch {
		case p < 2:
			return "done"
		case p < 4:
			return "open"
		}
		return "ending"
	}
	txnID := func(p int) string { return fmt.Sprintf("crash-%s-%d", role(p), p) }
	// txnValues writes count records of transaction n of producer p to
	// every partition.
	txnValues := func(p, n, count int) map[int32][]string {
		out := map[int32][]string{}
		for part := int32(0); part < partitions; part++ {
			for i := range count {
				out[part] = append(out[part], txnRecord{p, n, i, count}.value())
			}
		}
		return out
	}
	newProducer := func(p int, opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{
			kgo.SeedBrokers(c.addr),
			kgo.TransactionalID(txnID(p)),
			kgo.TransactionTimeout(time.Second),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequestRetries(2),
		}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}

	sent := make(endTxnSent, producers)
	var clients []*kgo.Client
	for p := range producers {
		var opts []kgo.Opt
		if p == producers-1 {
			opts = append(opts, kgo.WithHooks(sent))
		}
		cl := newProducer(p, opts...)
		clients = append(clients, cl)
		switch role(p) {
		case "done":
			for n, commit := range []bool{true, false, true} {
				if err := produceTxn(ctx, cl, topic, commit, txnValues(p, n, 2)); err != nil {
					t.Fatalf("producer %d transaction %d: %v", p, n, err)
				}
			}
		case "open", "ending":
			if err := cl.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			for part, vs := range txnValues(p, 0, 3) {
				for _, v := range vs {
					if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: part, Value: []byte(v)}).FirstErr(); err != nil {
						t.Fatalf("producer %d: %v", p, err)
					}
				}
			}
		}
	}
	// Commit the "ending" transactions. Producers 4 and 5 have their
	// EndTxn taken in by the coordinator (the decision is in the
	// __transaction_state log; the markers may or may not be written)
	// before the kill; producer 6's EndTxn has only just been sent.
	adm := newAdmin(t, c.addr)
	endCtx, endCancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[int]bool{} // EndTxn answered: committed
	end := func(p int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := clients[p].EndTransaction(endCtx, kgo.TryCommit)
			mu.Lock()
			acked[p] = err == nil
			mu.Unlock()
		}()
	}
	decided := map[int]bool{}
	for p := 4; p <= 5; p++ {
		end(p)
		testutil.Eventually(t, 10*time.Second, func() (bool, string) {
			st := describeTxn(t, adm, txnID(p)).State
			return st != "Ongoing", txnID(p) + " to leave Ongoing"
		})
		decided[p] = true
	}
	end(6)
	select {
	case <-sent:
	case <-ctx.Done():
		t.Fatal("EndTxn never sent")
	}
	c.kill(t)
	endCancel()
	wg.Wait()
	for _, cl := range clients {
		cl.Close()
	}

	c = startChild(t, dir, "127.0.0.1:0", childEnv+"_TXN=1")
	adm = newAdmin(t, c.addr)
	// Every transaction ends: prepared ones complete on load, open ones
	// are aborted once their timeout has passed.
	states := map[int]string{}
	testutil.Eventually(t, 20*time.Second, func() (bool, string) {
		for p := range producers {
			d := describeTxn(t, adm, txnID(p))
			if d.State != "CompleteCommit" && d.State != "CompleteAbort" {
				return false, fmt.Sprintf("%s to end: %s", txnID(p), d.State)
			}
			states[p] = d.State
		}
		return true, ""
	})
	for p := range producers {
		switch {
		case role(p) == "open" && states[p] != "CompleteAbort":
			t.Errorf("%s: open transaction %s after restart, want aborted", txnID(p), states[p])
		case role(p) == "ending" && (acked[p] || decided[p]) && states[p] != "CompleteCommit":
			t.Errorf("%s: commit decided before the kill (acknowledged %v) is %s after restart", txnID(p), acked[p], states[p])
		}
	}
	t.Logf("after restart: commits acknowledged %v, decided %v; states %v", acked, decided, states)

	// The producers carry on with the same transactional ids.
	for p := range producers {
		cl := txnProducer(t, c.addr, txnID(p))
		if err := produceTxn(ctx, cl, topic, true, txnValues(p, 10, 2)); err != nil {
			t.Fatalf("%s after restart: %v", txnID(p), err)
		}
	}

	committed := readAll(t, c.addr, topic, true)
	uncommitted := readAll(t, c.addr, topic, false)
	for part := int32(0); part < partitions; part++ {
		byTxn := map[txnKey][]string{}
		for _, v := range committed[part] {
			r, ok := parseTxnRecord(v)
			if !ok {
				t.Fatalf("partition %d: value %q", part, v)
			}
			k := txnKey{r.producer, r.txn}
			byTxn[k] = append(byTxn[k], v)
		}
		want := map[txnKey][]string{}
		for p := range producers {
			switch role(p) {
			case "done":
				want[txnKey{p, 0}] = txnValues(p, 0, 2)[part]
				want[txnKey{p, 2}] = txnValues(p, 2, 2)[part]
			case "ending":
				if states[p] == "CompleteCommit" {
					want[txnKey{p, 0}] = txnValues(p, 0, 3)[part]
				}
			}
			want[txnKey{p, 10}] = txnValues(p, 10, 2)[part]
		}
		for k, vs := range want {
			if !slices.Equal(byTxn[k], vs) {
				t.Errorf("partition %d: transaction %v read_committed as %q, want %q", part, k, byTxn[k], vs)
			}
		}
		for k, vs := range byTxn {
			if _, ok := want[k]; !ok {
				t.Errorf("partition %d: transaction %v (%s) visible to read_committed: %q", part, k, states[k.producer], vs)
			}
		}
		// The aborted records are in the log all the same.
		for p := range producers {
			if role(p) == "open" {
				for _, v := range txnValues(p, 0, 3)[part] {
					if !slices.Contains(uncommitted[part], v) {
						t.Errorf("partition %d: acknowledged record %s of an open transaction lost", part, v)
					}
				}
			}
		}
	}
}
