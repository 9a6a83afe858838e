package broker_test

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// WriteTxnMarkers, as a coordinator on another broker sends it: a COMMIT
// marker completes the producer's open transaction on the partition (the
// last stable offset moves past it, so read_committed readers see its
// records), a marker for a partition that does not exist gets
// UNKNOWN_TOPIC_OR_PARTITION, and one from a coordinator epoch older than
// the last marker's TRANSACTION_COORDINATOR_FENCED. The coordinator's own
// marker, written after, is a harmless duplicate.
func TestWriteTxnMarkers(t *testing.T) {
	b := testutil.StartBroker(t, txnBrokerConfig())
	const topic = "write-markers"
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, topic, 1, nil)
	ctx := testContext(t)
	pr := txnProducer(t, b.Addr(), "write-markers-txn")
	if err := pr.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a", "b"} {
		if err := pr.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	pid, epoch, err := pr.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lso := func() int64 {
		t.Helper()
		offs, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := offs.Lookup(topic, 0)
		return o.Offset
	}
	if got := lso(); got != 0 {
		t.Fatalf("last stable offset with the transaction open: %d, want 0", got)
	}

	mark := func(coordEpoch int32, topic string, partition int32) int16 {
		t.Helper()
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		rm := kmsg.NewWriteTxnMarkersRequestMarker()
		rm.ProducerID, rm.ProducerEpoch, rm.Committed, rm.CoordinatorEpoch = pid, epoch, true, coordEpoch
		rt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		rt.Topic, rt.Partitions = topic, []int32{partition}
		rm.Topics = append(rm.Topics, rt)
		req.Markers = append(req.Markers, rm)
		// Straight to the broker: kgo would route the request by the
		// partitions' leaders and refuse unknown ones itself.
		resp, err := req.RequestWith(ctx, pr.SeedBrokers()[0])
		if err != nil {
			t.Fatal(err)
		}
		return resp.Markers[0].Topics[0].Partitions[0].ErrorCode
	}
	for _, s := range []struct {
		what       string
		coordEpoch int32
		topic      string
		partition  int32
		want       *kerr.Error
	}{
		{"commit", 0, topic, 0, nil},
		{"unknown topic", 0, "no-such-topic", 0, kerr.UnknownTopicOrPartition},
		{"unknown partition", 0, topic, 7, kerr.UnknownTopicOrPartition},
		{"older coordinator epoch", -1, topic, 0, kerr.TransactionCoordinatorFenced},
	} {
		code := mark(s.coordEpoch, s.topic, s.partition)
		if s.want == nil && code != 0 || s.want != nil && code != s.want.Code {
			t.Errorf("%s: %v, want %v", s.what, kerr.ErrorForCode(code), s.want)
		}
	}
	if got := lso(); got != 3 {
		t.Errorf("last stable offset after the commit marker: %d, want 3", got)
	}
	// The coordinator's own commit writes its marker again, which
	// completes nothing more.
	if err := pr.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, b.Addr(), topic, true)[0]
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("read_committed: %v, want [a b]", got)
	}
}
