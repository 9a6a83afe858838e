package group

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (f *fixture) txnCommit(group, memberID string, gen int32, pid int64, offsets map[int32]int64) int16 {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = 3
	req.TransactionalID, req.Group, req.MemberID, req.Generation = "tx", group, memberID, gen
	req.ProducerID, req.ProducerEpoch = pid, 0
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "t"
	for p, o := range offsets {
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, o
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := f.c.TxnOffsetCommit(req)(context.Background())
	for _, st := range resp.Topics {
		for _, sp := range st.Partitions {
			if sp.ErrorCode != 0 {
				return sp.ErrorCode
			}
		}
	}
	return 0
}

// fetchStable fetches one partition with RequireStable.
func (f *fixture) fetchStable(group string, partition int32) (int16, int64) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	req.RequireStable = true
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic, rt.Partitions = "t", []int32{partition}
	rg.Topics = append(rg.Topics, rt)
	req.Groups = append(req.Groups, rg)
	sp := f.c.OffsetFetch(req).Groups[0].Topics[0].Partitions[0]
	return sp.ErrorCode, sp.Offset
}

func (f *fixture) completeTxn(group string, pid int64, commit bool) {
	f.t.Helper()
	if err := f.c.CompleteTxn(context.Background(), PartitionFor(group, testPartitions), TxnMarker{ProducerID: pid, Commit: commit}); err != nil {
		f.t.Fatal(err)
	}
}

// Transactional offsets are invisible until the commit marker, unstable
// under RequireStable meanwhile, dropped on abort, and a restart replays
// all of it the same way.
func TestTxnOffsetsCommitAndAbort(t *testing.T) {
	f := newFixture(t, nil)
	wantCode(t, "txn commit", f.txnCommit("g", "", -1, 7, map[int32]int64{0: 10}), nil)
	wantCode(t, "txn commit", f.txnCommit("g", "", -1, 8, map[int32]int64{1: 20}), nil)
	if _, offs := f.fetch("g"); len(offs) != 0 {
		t.Fatalf("pending offsets visible: %v", offs)
	}
	if code, _ := f.fetchStable("g", 0); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("RequireStable fetch of a pending offset: %v", kerr.ErrorForCode(code))
	}
	f.completeTxn("g", 7, true)
	f.completeTxn("g", 8, false)
	if code, off := f.fetchStable("g", 0); code != 0 || off != 10 {
		t.Fatalf("committed offset: %v %d", kerr.ErrorForCode(code), off)
	}
	if code, off := f.fetchStable("g", 1); code != 0 || off != -1 {
		t.Fatalf("aborted offset: %v %d", kerr.ErrorForCode(code), off)
	}
	// Another producer's transaction is open across the restart.
	wantCode(t, "txn commit", f.txnCommit("g", "", -1, 9, map[int32]int64{2: 30}), nil)

	f.c.Close()
	f.start(nil)
	if _, offs := f.fetch("g"); len(offs) != 1 || offs["t/0"] != 10 {
		t.Fatalf("after restart: %v", offs)
	}
	if code, _ := f.fetchStable("g", 2); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("open transaction's offset after restart: %v", kerr.ErrorForCode(code))
	}
	f.completeTxn("g", 9, true)
	if code, off := f.fetchStable("g", 2); code != 0 || off != 30 {
		t.Fatalf("offset committed after restart: %v %d", kerr.ErrorForCode(code), off)
	}
}

// KIP-447: a member's transactional commit is checked against the group's
// generation.
func TestTxnOffsetCommitChecksGeneration(t *testing.T) {
	f := newFixture(t, nil)
	j := f.joinNew("g")
	f.clock.Advance(f.c.cfg.InitialRebalanceDelay * 2)
	jr := j.get()
	wantCode(t, "join", jr.ErrorCode, nil)
	f.sync("g", jr.MemberID, jr.Generation, map[string]string{jr.MemberID: "x"})
	wantCode(t, "stale generation", f.txnCommit("g", jr.MemberID, jr.Generation-1, 7, map[int32]int64{0: 1}), kerr.IllegalGeneration)
	wantCode(t, "unknown member", f.txnCommit("g", "who", jr.Generation, 7, map[int32]int64{0: 1}), kerr.UnknownMemberID)
	wantCode(t, "current member", f.txnCommit("g", jr.MemberID, jr.Generation, 7, map[int32]int64{0: 1}), nil)
}
