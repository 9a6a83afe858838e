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
