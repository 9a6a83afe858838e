package recordbatch

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A batch Encode builds parses back, and reads the same to franz-go's
// own decoder.
func TestEncodeDecode(t *testing.T) {
	recs := []Record{{Key: []byte("k1"), Value: []byte("v1")}, {Key: []byte("k2")}, {Key: []byte{}, Value: []byte{}}}
	ts := time.UnixMilli(1700000000123)
	b := Encode(recs, ts, AttrTransactional, Producer{ID: 7, Epoch: 3, Sequence: 11})

	h, batch, rest, err := Next(append(b, 1, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rest, []byte{1, 2, 3}) || len(batch) != len(b) {
		t.Fatalf("split %d+%d bytes, want %d+3", len(batch), len(rest), len(b))
	}
	want := Header{Length: int32(len(b) - LogOverhead), LeaderEpoch: -1, Attributes: AttrTransactional, LastOffsetDelta: 2,
		BaseTimestamp: ts.UnixMilli(), MaxTimestamp: ts.UnixMilli(), ProducerID: 7, ProducerEpoch: 3, BaseSequence: 11, Records: 3}
	if h != want {
		t.Fatalf("header %+v, want %+v", h, want)
	}
	if !h.Transactional() || h.Control() || h.Compression() != 0 || h.LastOffset() != 2 {
		t.Fatalf("header accessors wrong: %+v", h)
	}
	got, err := DecodeRecords(h, batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || string(got[0].Key) != "k1" || string(got[0].Value) != "v1" || got[1].Value != nil || got[2].Key == nil || got[2].Value == nil {
		t.Fatalf("records %q", got)
	}

	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	if kb.NumRecords != 3 || kb.ProducerID != 7 {
		t.Fatalf("franz-go reads %+v", kb)
	}
}

// Corrupt input is an error wrapping ErrCorrupt, never a panic.
func TestCorrupt(t *testing.T) {
	good := Encode([]Record{{Key: []byte("k"), Value: []byte("v")}}, time.Unix(0, 0), 0, NoProducer)
	for name, mutate := range map[string]func([]byte) []byte{
		"short":      func(b []byte) []byte { return b[:HeaderSize-1] },
		"truncated":  func(b []byte) []byte { return b[:len(b)-1] },
		"magic":      func(b []byte) []byte { b[OffMagic] = 1; return b },
		"crc":        func(b []byte) []byte { b[len(b)-1] ^= 1; return b },
		"length":     func(b []byte) []byte { b[OffLength+3] = 1; return b },
		"neg count":  func(b []byte) []byte { b[OffRecordCount] = 0x80; SetCRC(b); return b },
		"record len": func(b []byte) []byte { b[HeaderSize] = 0x7f; SetCRC(b); return b },
	} {
		b := mutate(bytes.Clone(good))
		h, batch, _, err := Next(b)
		if err == nil {
			_, err = DecodeRecords(h, batch)
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode([]Record{{Key: []byte("k"), Value: []byte("v")}}, time.Unix(0, 0), 0, NoProducer))
	f.Fuzz(func(t *testing.T, data []byte) {
		for len(data) > 0 {
			h, batch, rest, err := Next(data)
			if err != nil {
				return
			}
			if h.Compression() == 0 {
				DecodeRecords(h, batch)
			}
			data = rest
		}
	})
}
