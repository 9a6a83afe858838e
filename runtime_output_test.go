package runnel

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCopyKeyValue checks the collector's copies of a task's key and
// value: equal bytes, nulls kept as nil and empty values as empty, no
// memory shared with the task's, and the buffer found again by
// recycleOutput and reused with no allocation.
func TestCopyKeyValue(t *testing.T) {
	cases := [][2][]byte{
		{[]byte("key"), []byte("value")},
		{nil, []byte("value")},
		{[]byte("key"), nil},
		{nil, nil},
		{[]byte{}, []byte{}},
		{[]byte("k"), []byte{}},
		{bytes.Repeat([]byte("k"), 100), bytes.Repeat([]byte("v"), 1000)},
	}
	rec := new(kgo.Record)
	for _, c := range cases {
		key, value := bytes.Clone(c[0]), bytes.Clone(c[1])
		rec.Key, rec.Value = copyKeyValue(rec.Key[:0], key, value)
		desc := fmt.Sprintf("key %q (nil %t), value %q (nil %t)", c[0], c[0] == nil, c[1], c[1] == nil)
		if !bytes.Equal(rec.Key, c[0]) || (rec.Key == nil) != (c[0] == nil) || !bytes.Equal(rec.Value, c[1]) || (rec.Value == nil) != (c[1] == nil) {
			t.Fatalf("%s: copied as key %q (nil %t), value %q (nil %t)", desc, rec.Key, rec.Key == nil, rec.Value, rec.Value == nil)
		}
		for i := range key {
			key[i] = 'x'
		}
		for i := range value {
			value[i] = 'x'
		}
		if !bytes.Equal(rec.Key, c[0]) || !bytes.Equal(rec.Value, c[1]) {
			t.Fatalf("%s: the copies changed with the task's bytes", desc)
		}
		// The value's copy must not run into the key's.
		if rec.Key != nil && rec.Value != nil && cap(rec.Value) != len(rec.Value) {
			t.Fatalf("%s: value copy has capacity %d past its %d bytes", desc, cap(rec.Value), len(rec.Value))
		}
		recycleOutput(rec)
		rec = outputRecords.Get().(*kgo.Record)
	}
	key, value := []byte("key"), bytes.Repeat([]byte("v"), 200)
	rec.Key, rec.Value = copyKeyValue(rec.Key[:0], key, value)
	allocs := testing.AllocsPerRun(100, func() {
		buf := rec.Key
		if buf == nil {
			buf = rec.Value
		}
		rec.Key, rec.Value = copyKeyValue(buf[:0], key, value)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per reused copy, want 0", allocs)
	}
}

// TestFetchRecordsPool checks the pool of the consumer's record slices: a
// slice put back is handed out again for a batch it holds, a larger
// batch gets a new one, and the free lists stay within their bound.
func TestFetchRecordsPool(t *testing.T) {
	var p fetchRecords
	s := p.GetRecords(100)
	if cap(s) < 100 || len(s) != 0 {
		t.Fatalf("GetRecords(100): len %d cap %d", len(s), cap(s))
	}
	p.PutRecords(s[:cap(s)])
	again := p.GetRecords(70)
	if &again[:1][0] != &s[:1][0] || len(again) != 0 {
		t.Errorf("GetRecords(70) after putting back a slice of %d: not that slice", cap(s))
	}
	if big := p.GetRecords(1000); cap(big) < 1000 {
		t.Errorf("GetRecords(1000): cap %d", cap(big))
	}
	for range 2 * maxFreeRecords / 1024 {
		p.PutRecords(make([]kgo.Record, 1024))
	}
	if p.count > maxFreeRecords {
		t.Errorf("free lists hold %d records, more than %d", p.count, maxFreeRecords)
	}
}
