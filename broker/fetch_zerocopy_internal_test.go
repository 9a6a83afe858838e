package broker

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/log"
)

// zeroCopyTestLog is a log of a few batches for handing out regions.
func zeroCopyTestLog(t *testing.T) *log.Log {
	t.Helper()
	l, err := log.Open(t.TempDir(), log.Config{RetentionMs: -1, RetentionBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for i := 0; i < 20; i++ {
		if _, err := l.Append(MakeTestBatch(-1, 0, 0, false, fmt.Sprint("value-", i), "second"), 0); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// spliceRegions puts the regions' bytes at their cuts, as the socket
// receives them.
func spliceRegions(t *testing.T, frame []byte, cuts []cut) []byte {
	t.Helper()
	var out []byte
	prev := 0
	for _, c := range cuts {
		out = append(out, frame[prev:c.at]...)
		buf := make([]byte, c.r.Len)
		if _, err := c.r.File().ReadAt(buf, c.r.Pos); err != nil {
			t.Fatal(err)
		}
		out = append(out, buf...)
		prev = c.at
	}
	return append(out, frame[prev:]...)
}

// TestZeroCopyEncodingMatchesKmsg checks the zero-copy encoder against
// kmsg's, byte for byte, on random responses at every Fetch version
// served (v4-v11 classic, v12 flexible, v13+ topic ids): the frame the
// socket receives, regions spliced in, is what appendResponse writes with
// the same records in memory — its size prefix included.
func TestZeroCopyEncodingMatchesKmsg(t *testing.T) {
	l := zeroCopyTestLog(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for version := int16(4); version <= 18; version++ {
		for round := 0; round < 20; round++ {
			resp := kmsg.NewPtrFetchResponse()
			resp.Version = version
			resp.ThrottleMillis = rng.Int32N(100)
			resp.ErrorCode = int16(rng.IntN(2))
			resp.SessionID = rng.Int32N(3)
			z := &zeroCopyFetch{FetchResponse: resp}
			var inMemory [][]byte // what each region holds, for kmsg
			for ti := range rng.IntN(3) + 1 {
				st := kmsg.NewFetchResponseTopic()
				st.Topic = fmt.Sprint("topic-", ti)
				st.TopicID[0] = byte(ti + 1)
				for pi := range rng.IntN(4) + 1 {
					sp := kmsg.NewFetchResponseTopicPartition()
					sp.Partition = int32(pi)
					sp.HighWatermark = rng.Int64N(1 << 40)
					sp.LastStableOffset = rng.Int64N(1 << 40)
					sp.LogStartOffset = rng.Int64N(1 << 20)
					switch rng.IntN(3) {
					case 1:
						sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
					case 2:
						for range rng.IntN(3) + 1 {
							a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
							a.ProducerID, a.FirstOffset = rng.Int64N(1000), rng.Int64N(1000)
							sp.AbortedTransactions = append(sp.AbortedTransactions, a)
						}
					}
					switch rng.IntN(4) {
					case 0: // null
					case 1:
						sp.RecordBatches = []byte{}
					case 2:
						sp.RecordBatches = bytes.Repeat([]byte{byte(pi)}, rng.IntN(300))
					case 3:
						sp.RecordBatches = []byte{}
						res, err := l.ReadRegion(rng.Int64N(30), int32(rng.IntN(2000)), l.EndOffset(), nil)
						if err != nil || res.Region == nil {
							t.Fatalf("ReadRegion: %v", err)
						}
						z.regions = append(z.regions, fetchRegion{ti: ti, pi: pi, r: res.Region})
					}
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
			if !encodable(resp) {
				t.Fatal("a response without tags is not encodable")
			}
			req := &request{key: 1, version: version, corr: rng.Int32(), flexible: version >= 12}
			frame, cuts := z.appendFetch(nil, req, nil)
			got := spliceRegions(t, frame, cuts)
			for _, fr := range z.regions {
				buf := make([]byte, fr.r.Len)
				if _, err := fr.r.File().ReadAt(buf, fr.r.Pos); err != nil {
					t.Fatal(err)
				}
				inMemory = append(inMemory, buf)
			}
			ref := *resp
			ref.Topics = make([]kmsg.FetchResponseTopic, len(resp.Topics))
			for i := range resp.Topics {
				ref.Topics[i] = resp.Topics[i]
				ref.Topics[i].Partitions = append([]kmsg.FetchResponseTopicPartition(nil), resp.Topics[i].Partitions...)
			}
			for i, fr := range z.regions {
				ref.Topics[fr.ti].Partitions[fr.pi].RecordBatches = inMemory[i]
			}
			want := appendResponse(nil, req, &ref)
			if !bytes.Equal(got, want) {
				t.Fatalf("v%d round %d: zero-copy frame differs from kmsg's (%d vs %d bytes)", version, round, len(got), len(want))
			}
			z.release()
		}
	}
}

// TestZeroCopyFallsBackOnTags: a response carrying a tagged field (which
// the zero-copy encoder does not write) is read into memory for kmsg.
func TestZeroCopyFallsBackOnTags(t *testing.T) {
	l := zeroCopyTestLog(t)
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	st := kmsg.NewFetchResponseTopic()
	sp := kmsg.NewFetchResponseTopicPartition()
	sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = 3, 10
	sp.RecordBatches = []byte{}
	st.Partitions = append(st.Partitions, sp)
	resp.Topics = append(resp.Topics, st)
	if encodable(resp) {
		t.Fatal("a response with DivergingEpoch set is encodable")
	}
	res, err := l.ReadRegion(0, 1<<20, l.EndOffset(), nil)
	if err != nil || res.Region == nil {
		t.Fatalf("ReadRegion: %v", err)
	}
	want, err := l.Read(0, 1<<20, l.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := &conn{nc: a}
	z := &zeroCopyFetch{FetchResponse: resp, c: c, regions: []fetchRegion{{r: res.Region}}}
	out := z.finisher(func(context.Context) kmsg.Response { return resp })(t.Context())
	if _, ok := out.(*zeroCopyFetch); ok {
		t.Fatal("a response with tags went zero-copy")
	}
	if !bytes.Equal(resp.Topics[0].Partitions[0].RecordBatches, want.Records) {
		t.Fatal("the fallback did not read the region's records")
	}
	if len(z.regions) != 0 {
		t.Fatal("regions still held after the fallback")
	}
}
