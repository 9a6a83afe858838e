package broker_test

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/runnel-dev/runnel/internal/testutil"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/runnel-dev/runnel/broker"
)

// seqModel is an independent model of one idempotent producer's
// acknowledged writes to one partition, by Kafka's rules: a batch at an
// older epoch is INVALID_PRODUCER_EPOCH; a newer epoch must start at
// sequence 0; at the same epoch a batch repeating one of the last five
// batches' sequence range is acknowledged again with its first offsets and
// written nothing, and any other batch must start right after the last
// sequence, or it is OUT_OF_ORDER_SEQUENCE_NUMBER. A producer new to the
// partition starts at 0.
type seqModel struct {
	known  bool
	epoch  int16
	last   int32      // last sequence at epoch
	recent []seqRange // the last five batches at epoch
	log    []string   // the values the log must hold, in order
}

type seqRange struct {
	first, last int32
	offset      int64
}

// expect returns the code the broker must answer a batch with, and the
// base offset for a success.
func (m *seqModel) expect(epoch int16, seq int32, n int) (int16, int64, bool) {
	last := seq + int32(n) - 1
	switch {
	case !m.known || epoch > m.epoch:
		if seq != 0 {
			return kerr.OutOfOrderSequenceNumber.Code, 0, false
		}
	case epoch < m.epoch:
		return kerr.InvalidProducerEpoch.Code, 0, false
	default:
		for _, r := range m.recent {
			if r.first == seq && r.last == last {
				return 0, r.offset, true
			}
		}
		if seq != m.last+1 {
			return kerr.OutOfOrderSequenceNumber.Code, 0, false
		}
	}
	return 0, int64(len(m.log)), false
}

func (m *seqModel) apply(epoch int16, seq int32, values []string) {
	if !m.known || epoch != m.epoch {
		m.known, m.epoch, m.recent = true, epoch, nil
	}
	last := seq + int32(len(values)) - 1
	m.recent = append(m.recent, seqRange{seq, last, int64(len(m.log))})
	if len(m.recent) > 5 {
		m.recent = m.recent[1:]
	}
	m.last = last
	m.log = append(m.log, values...)
}

// Producer-sequence games: a scripted idempotent producer sends batches
// that follow on, skip ahead, repeat (whole or overlapping), restart at 0,
// change epoch, come two to a request, or lie about their record count
// (the 20 records in the log for 6 acknowledged), in random order. Every answer must be the model's, and
// the log must hold exactly the acknowledged new batches, in order,
// before and after a restart of the broker.
func TestAbuseProducerSequenceGames(t *testing.T) {
	dir := t.TempDir()
	b := testutil.StartBroker(t, broker.Config{DataDir: dir})
	createTopic(t, newAdmin(t, b.Addr()), "seq", 1, nil)
	cl := newClient(t, b.Addr())
	const pid = 1000
	rng := rand.New(rand.NewPCG(20, 1))
	var m seqModel
	type sent struct {
		epoch  int16
		seq    int32
		values []string
	}
	var history []sent
	epoch := int16(0)
	next := int32(0) // what a well-behaved producer would send next
	steps := abuseSize(400, 5000)
	for i := range steps {
		var s sent
		switch k := rng.IntN(12); {
		case k == 10 && len(history) > 0: // a batch that lies about its record count
			values := []string{fmt.Sprintf("s%d-lie", i)}
			claim := int32(2 + rng.IntN(20))
			code, _ := produceRaw(t, cl, "seq", withRecordCount(broker.MakeTestBatch(pid, epoch, next, false, values...), claim))
			if code != kerr.CorruptMessage.Code {
				t.Fatalf("step %d: batch of 1 record declaring %d: %v, want CORRUPT_MESSAGE", i, claim, kerr.ErrorForCode(code))
			}
			continue
		case k == 11: // two batches that follow on, in one request
			a := []string{fmt.Sprintf("s%d-a", i)}
			c := []string{fmt.Sprintf("s%d-b", i)}
			wantCode, wantBase, _ := m.expect(epoch, next, 1)
			code, base := produceRaw(t, cl, "seq",
				broker.MakeTestBatch(pid, epoch, next, false, a...),
				broker.MakeTestBatch(pid, epoch, next+1, false, c...))
			if code != wantCode || (code == 0 && base != wantBase) {
				t.Fatalf("step %d: two batches at epoch %d seq %d: %v at %d, want %v at %d", i, epoch, next, kerr.ErrorForCode(code), base, kerr.ErrorForCode(wantCode), wantBase)
			}
			if code == 0 {
				m.apply(epoch, next, a)
				m.apply(epoch, next+1, c)
				history = append(history, sent{epoch, next, a}, sent{epoch, next + 1, c})
				next += 2
			}
			continue
		case k < 4 || len(history) == 0: // the next batch
			s = sent{epoch: epoch, seq: next}
		case k < 6: // a retry of an earlier batch, identical
			s = history[len(history)-1-rng.IntN(min(len(history), 8))]
		case k == 6: // skip ahead
			s = sent{epoch: epoch, seq: next + 1 + int32(rng.IntN(5))}
		case k == 7: // overlap the last batch
			s = sent{epoch: epoch, seq: max(next-1, 0)}
		case k == 8: // restart at 0
			s = sent{epoch: epoch, seq: 0}
		default: // a new epoch, now and then an old one
			if rng.IntN(3) == 0 && epoch > 0 {
				s = sent{epoch: epoch - 1, seq: 0}
			} else {
				epoch++
				next = 0
				s = sent{epoch: epoch, seq: 0}
			}
		}
		if s.values == nil {
			for j := range 1 + rng.IntN(3) {
				s.values = append(s.values, fmt.Sprintf("s%d-%d", i, j))
			}
		}
		wantCode, wantBase, dup := m.expect(s.epoch, s.seq, len(s.values))
		code, base := produceRaw(t, cl, "seq", broker.MakeTestBatch(pid, s.epoch, s.seq, false, s.values...))
		if code != wantCode {
			t.Fatalf("step %d: epoch %d seq %d (%d records): %v, want %v", i, s.epoch, s.seq, len(s.values), kerr.ErrorForCode(code), kerr.ErrorForCode(wantCode))
		}
		if code != 0 {
			continue
		}
		if base != wantBase {
			t.Fatalf("step %d: epoch %d seq %d acknowledged at %d, want %d (duplicate %t)", i, s.epoch, s.seq, base, wantBase, dup)
		}
		if !dup {
			m.apply(s.epoch, s.seq, s.values)
			history = append(history, s)
			if s.epoch == epoch {
				next = s.seq + int32(len(s.values))
			}
		}
	}
	check := func(when string) {
		t.Helper()
		recs := consumeAll(t, b.Addr(), "seq", len(m.log))
		var got []string
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
		if !slices.Equal(got, m.log) {
			t.Fatalf("%s: log holds %d records, acknowledged %d\ngot  %v\nwant %v", when, len(got), len(m.log), got, m.log)
		}
		if hw := highWatermark(t, cl, "seq"); hw != int64(len(m.log)) {
			t.Fatalf("%s: high watermark %d, acknowledged %d records", when, hw, len(m.log))
		}
	}
	check("before restart")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = testutil.StartBroker(t, broker.Config{DataDir: dir})
	cl = newClient(t, b.Addr())
	check("after restart")
}

// withRecordCount rewrites a batch's declared record count (and last
// offset delta, which must agree) and its CRC: a batch that lies about
// what it holds.
func withRecordCount(b []byte, n int32) []byte {
	binary.BigEndian.PutUint32(b[23:], uint32(n-1))
	binary.BigEndian.PutUint32(b[57:], uint32(n))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}
