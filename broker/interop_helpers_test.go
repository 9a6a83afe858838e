package broker_test

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// Helpers for the interoperability tests (interop_test.go): a common record
// form every client's records convert to, a record set that exercises keys,
// headers and binary values, and lookups of the external peers.

// peerRecord is a record as the interoperability tests compare them. A nil
// Key is a null key. Offset is -1 where the producing client did not say.
type peerRecord struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []peerHeader
}

type peerHeader struct {
	Key   string
	Value []byte
}

func (r peerRecord) String() string {
	key := "null"
	if r.Key != nil {
		key = strconv.Quote(string(r.Key))
	}
	var hs []string
	for _, h := range r.Headers {
		hs = append(hs, fmt.Sprintf("%q=%q", h.Key, h.Value))
	}
	v := string(r.Value)
	if len(v) > 80 {
		v = fmt.Sprintf("%s...(%d bytes)", v[:80], len(r.Value))
	}
	return fmt.Sprintf("p%d@%d key=%s value=%q headers=[%s]", r.Partition, r.Offset, key, v, strings.Join(hs, " "))
}

// same reports whether got is the record want, ignoring want's offset
// when it is -1.
func (want peerRecord) same(got peerRecord) bool {
	if want.Partition != got.Partition || (want.Offset >= 0 && want.Offset != got.Offset) {
		return false
	}
	if (want.Key == nil) != (got.Key == nil) || !bytes.Equal(want.Key, got.Key) || !bytes.Equal(want.Value, got.Value) {
		return false
	}
	return slices.EqualFunc(want.Headers, got.Headers, func(a, b peerHeader) bool {
		return a.Key == b.Key && bytes.Equal(a.Value, b.Value)
	})
}

// peerRecords makes n records spread round-robin over partitions: every
// fifth has a null key, every other one two headers, values carry binary
// bytes and every seventh is 20 KiB of compressible text. The value starts
// with the record's index and "|", which balancers that choose partitions
// from the value read (see indexOf).
func peerRecords(n int, partitions int32) []peerRecord {
	out := make([]peerRecord, n)
	for i := range out {
		r := peerRecord{Partition: int32(i) % partitions, Offset: -1}
		if i%5 != 0 {
			r.Key = fmt.Appendf(nil, "key-%d", i%7)
		}
		r.Value = fmt.Appendf(nil, "%d|value \x00\x01\xfe\xff %d", i, i*i)
		if i%7 == 3 {
			r.Value = append(r.Value, bytes.Repeat([]byte(" the quick brown fox"), 1024)...)
		}
		if i%2 == 0 {
			r.Headers = []peerHeader{{"trace-id", fmt.Appendf(nil, "t-%d", i)}, {"bin", []byte{0, byte(i), 0xff}}}
		}
		out[i] = r
	}
	return out
}

// textRecords makes n records of printable text only, for peers that read
// and print lines (kcat, the Java console tools): every record has a key
// and one header.
func textRecords(n int, partitions int32, prefix string) []peerRecord {
	out := make([]peerRecord, n)
	for i := range out {
		out[i] = peerRecord{
			Partition: int32(i) % partitions,
			Offset:    -1,
			Key:       fmt.Appendf(nil, "%s-key-%d", prefix, i%4),
			Value:     fmt.Appendf(nil, "%s value %d with spaces", prefix, i),
			Headers:   []peerHeader{{"origin", []byte(prefix)}},
		}
	}
	return out
}

// indexOf reads the record index that peerRecords put before "|".
func indexOf(value []byte) int {
	i, _, _ := bytes.Cut(value, []byte("|"))
	n, err := strconv.Atoi(string(i))
	if err != nil {
		return -1
	}
	return n
}

// checkRecords fails unless got holds exactly the records of want: the same
// set per partition, in the same order, with offsets where want has them.
func checkRecords(t testing.TB, want, got []peerRecord) {
	t.Helper()
	byPart := func(rs []peerRecord) map[int32][]peerRecord {
		m := map[int32][]peerRecord{}
		for _, r := range rs {
			m[r.Partition] = append(m[r.Partition], r)
		}
		return m
	}
	w, g := byPart(want), byPart(got)
	for p := range g {
		if _, ok := w[p]; !ok {
			t.Errorf("partition %d: %d records, none expected; first %v", p, len(g[p]), g[p][0])
		}
	}
	for p, ws := range w {
		gs := g[p]
		for i := range max(len(ws), len(gs)) {
			switch {
			case i >= len(gs):
				t.Errorf("partition %d: record %d missing: want %v", p, i, ws[i])
			case i >= len(ws):
				t.Errorf("partition %d: record %d unexpected: %v", p, i, gs[i])
			case !ws[i].same(gs[i]):
				t.Errorf("partition %d: record %d:\n got %v\nwant %v", p, i, gs[i], ws[i])
			}
		}
	}
}

// checkOffsets fails unless offsets rise by one per record within each
// partition, starting at 0: what the records of a fresh topic must carry.
func checkOffsets(t testing.TB, rs []peerRecord) {
	t.Helper()
	next := map[int32]int64{}
	for _, r := range rs {
		if r.Offset != next[r.Partition] {
			t.Errorf("record %v: offset %d, want %d", r, r.Offset, next[r.Partition])
		}
		next[r.Partition] = r.Offset + 1
	}
}

func fromKgo(r *kgo.Record) peerRecord {
	pr := peerRecord{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		pr.Headers = append(pr.Headers, peerHeader{h.Key, h.Value})
	}
	return pr
}

func toKgo(topic string, r peerRecord) *kgo.Record {
	kr := &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return kr
}

// produceKgo writes records to the partitions they name and returns them
// with the offsets the broker acknowledged.
func produceKgo(t testing.TB, addr, topic string, recs []peerRecord, opts ...kgo.Opt) []peerRecord {
	t.Helper()
	cl := newClient(t, addr, append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = toKgo(topic, r)
	}
	res := cl.ProduceSync(testContext(t), krs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("franz-go produce: %v", err)
	}
	// Results come in the order they completed; put them back in the
	// order they were sent.
	index := make(map[*kgo.Record]int, len(krs))
	for i, kr := range krs {
		index[kr] = i
	}
	out := slices.Clone(recs)
	for _, r := range res {
		i := index[r.Record]
		if r.Record.Partition != recs[i].Partition {
			t.Fatalf("franz-go record %d went to partition %d, want %d", i, r.Record.Partition, recs[i].Partition)
		}
		out[i].Offset = r.Record.Offset
	}
	return out
}

// consumeKgo reads n records from the start of topic's partitions.
func consumeKgo(t testing.TB, addr, topic string, n int) []peerRecord {
	t.Helper()
	var out []peerRecord
	for _, r := range consumeAll(t, addr, topic, n) {
		out = append(out, fromKgo(r))
	}
	if len(out) != n {
		t.Fatalf("franz-go consumed %d records, want %d", len(out), n)
	}
	return out
}

// The peers' helpers are internal/testutil's; these names are the ones
// the broker's tests were written with.
var (
	requirePeers = testutil.RequirePeers
	missingPeer  = testutil.MissingPeer
	javaTool     = testutil.JavaTool
)

// kafkaHome returns the Apache Kafka directory scripts/fetch-kafka.sh
// fills, and the path of scripts/kafka-tool.sh, or skips the test.
func kafkaHome(t testing.TB) (home, tool string) {
	t.Helper()
	in := testutil.KafkaInstall(t)
	return in.Home, in.Tool
}
