package txn

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// tombstones returns the transactional ids tombstoned in the partition,
// in log order.
func (p *memPartition) tombstones(t *testing.T) []string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, b := range p.batches {
		_, recs := decodeBatch(b)
		for _, r := range recs {
			if r.Value != nil {
				continue
			}
			var k kmsg.TxnMetadataKey
			if err := k.ReadFrom(r.Key); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, k.TransactionalID)
		}
	}
	return ids
}

// A transactional id idle for longer than transactional.id.expiration.ms
// (default 7 days) with no transaction open is removed and tombstoned;
// one with a transaction open, or used since, is kept. Its next
// InitProducerId starts afresh, and a coordinator loading the partition
// again does not bring it back.
func TestExpireIDs(t *testing.T) {
	const expiry = 7 * 24 * time.Hour // Config.IDExpiration's default
	part := &memPartition{}
	e := newEnv(t, part, 100)

	// "committed" and "aborted" end a transaction, "empty" never starts
	// one, "open" leaves one open, "recent" is used again later.
	_, cPid, cEpoch := e.init("committed", -1, -1)
	must(t, "add committed", e.add("committed", cPid, cEpoch, tp0), 0)
	must(t, "commit", e.end("committed", cPid, cEpoch, true, 5).ErrorCode, 0)
	_, aPid, aEpoch := e.init("aborted", -1, -1)
	must(t, "add aborted", e.add("aborted", aPid, aEpoch, tp0), 0)
	must(t, "abort", e.end("aborted", aPid, aEpoch, false, 4).ErrorCode, 0)
	_, _, _ = e.init("empty", -1, -1)
	_, oPid, oEpoch := e.init("open", -1, -1)
	must(t, "add open", e.add("open", oPid, oEpoch, tp1), 0)
	_, rPid, rEpoch := e.init("recent", -1, -1)

	e.advance(expiry - time.Hour)
	code, _, _ := e.init("recent", rPid, rEpoch)
	must(t, "reuse recent", code, 0)
	e.c.ExpireIDs()
	if got := part.tombstones(t); len(got) != 0 {
		t.Fatalf("tombstones before expiry: %q", got)
	}

	e.advance(2 * time.Hour) // the first four are idle for expiry + 1h
	e.c.ExpireIDs()
	expired := []string{"aborted", "committed", "empty"}
	got := part.tombstones(t)
	slices.Sort(got)
	if !slices.Equal(got, expired) {
		t.Fatalf("tombstones %q, want %q", got, expired)
	}
	check := func(e *env, when string) {
		t.Helper()
		for _, id := range expired {
			if st := e.describe(id); st.ErrorCode != kerr.TransactionalIDNotFound.Code {
				t.Errorf("%s: %s described as %s (%v), want TRANSACTIONAL_ID_NOT_FOUND", when, id, st.State, kerr.ErrorForCode(st.ErrorCode))
			}
		}
		if st := e.describe("open"); st.ErrorCode != 0 || st.State != "Ongoing" || st.ProducerID != oPid {
			t.Errorf("%s: open described as %+v, want Ongoing", when, st)
		}
		if st := e.describe("recent"); st.ErrorCode != 0 || st.ProducerID != rPid || st.ProducerEpoch != rEpoch+1 {
			t.Errorf("%s: recent described as %+v", when, st)
		}
		list := e.c.ListTransactions(kmsg.NewPtrListTransactionsRequest())
		var ids []string
		for _, st := range list.TransactionStates {
			ids = append(ids, st.TransactionalID)
		}
		if want := []string{"open", "recent"}; !slices.Equal(ids, want) {
			t.Errorf("%s: listed %q, want %q", when, ids, want)
		}
	}
	check(e, "after expiry")
	// A second pass finds nothing more to tombstone.
	e.c.ExpireIDs()
	if n := len(part.tombstones(t)); n != len(expired) {
		t.Fatalf("%d tombstones after a second pass, want %d", n, len(expired))
	}

	// A coordinator loading the partition sees the tombstones.
	e.c.Close()
	e2 := newEnv(t, part, 1000)
	check(e2, "after reload")

	// The expired id starts afresh: a new producer id at epoch 0. A
	// producer recovering with the id and epoch it had (KIP-360) gets
	// a new one too: as in Kafka, an unknown transactional id is
	// created whatever producer id the request carries.
	for _, r := range []struct {
		id    string
		pid   int64
		epoch int16
	}{{"committed", -1, -1}, {"aborted", aPid, aEpoch}} {
		code, pid, epoch := e2.init(r.id, r.pid, r.epoch)
		must(t, "init expired "+r.id, code, 0)
		if pid < 1000 || epoch != 0 {
			t.Fatalf("init of expired %s gave %d/%d, want a new producer id at epoch 0", r.id, pid, epoch)
		}
	}
	// The producer that had it before is fenced from the new one.
	must(t, "old producer's EndTxn", e2.end("committed", cPid, cEpoch+1, false, 5).ErrorCode, kerr.InvalidProducerIDMapping.Code)
}
