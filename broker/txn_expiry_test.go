package broker_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Expiry of transactional ids (transactional.id.expiration.ms) and of
// producer state on partitions (producer.id.expiration.ms), on the
// broker's injected clock.

// describeTxns describes transactional ids over the wire and returns
// each one's state, or the name of its error (TRANSACTIONAL_ID_NOT_FOUND).
func describeTxns(t *testing.T, cl *kgo.Client, ids ...string) map[string]string {
	t.Helper()
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = ids
	resp, err := req.RequestWith(testContext(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	for _, st := range resp.TransactionStates {
		out[st.TransactionalID] = st.State
		if err := kerr.ErrorForCode(st.ErrorCode); err != nil {
			out[st.TransactionalID] = err.(*kerr.Error).Message
		}
	}
	return out
}

// listTxns lists the transactional ids the broker coordinates.
func listTxns(t *testing.T, cl *kgo.Client) []string {
	t.Helper()
	resp, err := kmsg.NewPtrListTransactionsRequest().RequestWith(testContext(t), cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("list transactions: %v %v", err, resp)
	}
	var ids []string
	for _, st := range resp.TransactionStates {
		ids = append(ids, st.TransactionalID)
	}
	slices.Sort(ids)
	return ids
}

// A transactional id idle for transactional.id.expiration.ms is no longer
// described or listed, and stays gone after a restart, since the
// coordinator reloads its tombstone; an id used since is kept. A producer
// that takes up the expired id again starts with a new producer id.
func TestTxnTransactionalIDExpires(t *testing.T) {
	clk := newClock()
	cfg := txnBrokerConfig()
	cfg.DataDir = t.TempDir()
	cfg.Now = clk.Now
	cfg.TransactionalIDExpiration = time.Hour
	// The test runs the checks itself, on its clock.
	cfg.TransactionAbortTimedOutCheckInterval = time.Hour
	b := testutil.StartBroker(t, cfg)
	createTopic(t, newAdmin(t, b.Addr()), "idexp", 1, nil)
	ctx := testContext(t)

	commitOne := func(addr, id, v string) int64 {
		t.Helper()
		cl := txnProducer(t, addr, id)
		defer cl.Close()
		if err := produceTxn(ctx, cl, "idexp", true, map[int32][]string{0: {v}}); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		pid, _, err := cl.ProducerID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	gonePid := commitOne(b.Addr(), "gone", "g1")
	commitOne(b.Addr(), "kept", "k1")

	admin := newClient(t, b.Addr())
	clk.Advance(59 * time.Minute)
	b.ExpireTransactionalIDs()
	want := map[string]string{"gone": "CompleteCommit", "kept": "CompleteCommit"}
	if got := describeTxns(t, admin, "gone", "kept"); !mapsEqual(got, want) {
		t.Fatalf("before expiry: %v, want %v", got, want)
	}
	commitOne(b.Addr(), "kept", "k2") // used again: idle from now

	clk.Advance(2 * time.Minute)
	b.ExpireTransactionalIDs()
	want = map[string]string{"gone": "TRANSACTIONAL_ID_NOT_FOUND", "kept": "CompleteCommit"}
	if got := describeTxns(t, admin, "gone", "kept"); !mapsEqual(got, want) {
		t.Fatalf("after expiry: %v, want %v", got, want)
	}
	if got := listTxns(t, admin); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("listed %q after expiry, want [kept]", got)
	}

	// A restart replays __transaction_state, tombstone included.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = testutil.StartBroker(t, cfg)
	if err := b.WaitTxnsLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	admin = newClient(t, b.Addr())
	if got := describeTxns(t, admin, "gone", "kept"); !mapsEqual(got, want) {
		t.Fatalf("after restart: %v, want %v", got, want)
	}
	if got := listTxns(t, admin); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("listed %q after restart, want [kept]", got)
	}

	// The expired id is new again: a new producer id, and its
	// transactions work.
	if pid := commitOne(b.Addr(), "gone", "g2"); pid == gonePid {
		t.Fatalf("expired id kept its producer id %d", pid)
	}
	if got, want := readAll(t, b.Addr(), "idexp", true)[0], []string{"g1", "k1", "k2", "g2"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed: %q, want %q", got, want)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// An idempotent producer idle for producer.id.expiration.ms loses its
// state on the partition (a retention pass expires it, and a restart does
// not bring it back): a retry of one of its batches is no longer
// recognised. What happens to the retry then:
//
//   - A batch at sequence 0 is taken as the first of a new producer and
//     written again, a duplicate, as in Kafka: the expiration bounds how
//     long retries are deduplicated.
//   - A batch at any other sequence gets OUT_OF_ORDER_SEQUENCE_NUMBER,
//     because a partition accepts only sequence 0 from a producer it holds
//     no state for. Kafka 4 differs for idempotent, non-transactional
//     producers: a producer it has no state for is accepted at any
//     sequence ("possibly because all producer records have been deleted
//     due to retention"), so there this retry is written again too.
//     Kafka's transaction version 2 path, like Runnel, insists on
//     sequence 0.
func TestProducerIDExpires(t *testing.T) {
	clk := newClock()
	cfg := broker.Config{
		DataDir:                t.TempDir(),
		Now:                    clk.Now,
		ProducerIDExpiration:   time.Hour,
		RetentionCheckInterval: time.Hour, // the test runs the passes
	}
	b := testutil.StartBroker(t, cfg)
	createTopic(t, newAdmin(t, b.Addr()), "pidexp", 1, nil)
	cl := newClient(t, b.Addr())
	ir, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(context.Background(), cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %v", err, ir)
	}
	pid, epoch := ir.ProducerID, ir.ProducerEpoch
	batch := broker.MakeTestBatch

	type step struct {
		name  string
		batch []byte
		code  int16
		base  int64 // checked when code is 0
	}
	run := func(steps ...step) {
		t.Helper()
		for _, s := range steps {
			code, base := produceRaw(t, cl, "pidexp", s.batch)
			if code != s.code || (code == 0 && base != s.base) {
				t.Fatalf("%s: %v base %d, want %v base %d", s.name, kerr.ErrorForCode(code), base, kerr.ErrorForCode(s.code), s.base)
			}
		}
	}
	run(
		step{"first", batch(pid, epoch, 0, false, "a", "b"), 0, 0},
		step{"second", batch(pid, epoch, 2, false, "c"), 0, 2},
	)
	clk.Advance(59 * time.Minute)
	b.EnforceRetention()
	run(
		step{"retry of first before expiry", batch(pid, epoch, 0, false, "a", "b"), 0, 0},
		step{"retry of second before expiry", batch(pid, epoch, 2, false, "c"), 0, 2},
	)
	if hw := highWatermark(t, cl, "pidexp"); hw != 3 {
		t.Fatalf("high watermark %d before expiry, want 3", hw)
	}

	clk.Advance(61 * time.Minute)
	b.EnforceRetention()
	// The state stays forgotten across a restart, which rebuilds
	// producer state from snapshots and the log.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = testutil.StartBroker(t, cfg)
	cl = newClient(t, b.Addr())
	run(
		step{"retry of second after expiry", batch(pid, epoch, 2, false, "c"), kerr.OutOfOrderSequenceNumber.Code, 0},
		step{"retry of first after expiry", batch(pid, epoch, 0, false, "a", "b"), 0, 3},
		// The producer is known again from here.
		step{"retry of it", batch(pid, epoch, 0, false, "a", "b"), 0, 3},
		step{"next", batch(pid, epoch, 2, false, "d"), 0, 5},
	)
	if hw := highWatermark(t, cl, "pidexp"); hw != 6 {
		t.Fatalf("high watermark %d after expiry, want 6", hw)
	}
}
