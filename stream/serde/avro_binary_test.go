package serde

import (
	"bytes"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/avroschema"
)

type binItem struct {
	SKU string  `avro:"sku"`
	Qty uint16  `avro:"qty"`
	W   float32 `avro:"w"`
}

type binRecord struct {
	ID     int64              `avro:"id"`
	Small  int8               `avro:"small"`
	Name   string             `avro:"name"`
	Raw    []byte             `avro:"raw"`
	OK     bool               `avro:"ok"`
	Score  float64            `avro:"score"`
	Items  []binItem          `avro:"items"`
	Attrs  map[string]int32   `avro:"attrs"`
	Note   *string            `avro:"note"`
	Next   *binRecord         `avro:"next"`
	At     time.Time          `avro:"at"`
	Nested map[string][]int64 `avro:"nested"`
}

func binFixture(t testing.TB) (*avroschema.Parsed, *avroConv, *binConv) {
	t.Helper()
	text, err := avroSchemaOf(reflect.TypeFor[binRecord](), "t")
	if err != nil {
		t.Fatal(err)
	}
	p, err := avroschema.ParseChecked(text, nil)
	if err != nil {
		t.Fatal(err)
	}
	conv, err := newAvroConv(reflect.TypeFor[binRecord](), p.Root)
	if err != nil {
		t.Fatal(err)
	}
	return p, conv, newBinConv(reflect.TypeFor[binRecord](), p.Root)
}

func binSamples() []binRecord {
	note := "n"
	return []binRecord{
		{},
		{ID: math.MinInt64, Small: -128, Name: "héllo", Raw: []byte{0, 255}, OK: true, Score: -1.5,
			Items: []binItem{{"a", 65535, 0.5}, {"", 0, -2}}, Attrs: map[string]int32{"x": math.MaxInt32},
			Note: &note, Next: &binRecord{ID: 2, Items: []binItem{}}, At: time.UnixMilli(-1_234_567).UTC(),
			Nested: map[string][]int64{"k": {1, -1, math.MaxInt64}}},
	}
}

// TestAvroDirectPathMatchesGoavro: the direct path writes the bytes
// goavro writes for the same value, and reads goavro's bytes to the same
// value the goavro path gives.
func TestAvroDirectPathMatchesGoavro(t *testing.T) {
	p, conv, bin := binFixture(t)
	for i, v := range binSamples() {
		rv := reflect.ValueOf(&v).Elem()
		direct, err := bin.app(nil, rv)
		if err != nil {
			t.Fatalf("sample %d: direct write: %v", i, err)
		}
		n, err := conv.enc(rv)
		if err != nil {
			t.Fatal(err)
		}
		viaGoavro, err := p.Codec.BinaryFromNative(nil, n)
		if err != nil {
			t.Fatal(err)
		}
		// Maps of several keys may be written in any order; these have
		// at most one.
		if !bytes.Equal(direct, viaGoavro) {
			t.Fatalf("sample %d: direct % x\ngoavro % x", i, direct, viaGoavro)
		}
		var got binRecord
		rest, err := bin.read(viaGoavro, reflect.ValueOf(&got).Elem())
		if err != nil || len(rest) != 0 {
			t.Fatalf("sample %d: direct read: %v, %d bytes left", i, err, len(rest))
		}
		native, _, err := p.Codec.NativeFromBinary(viaGoavro)
		if err != nil {
			t.Fatal(err)
		}
		var want binRecord
		if err := conv.dec(native, reflect.ValueOf(&want).Elem()); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("sample %d: direct read %+v\ngoavro path %+v", i, got, want)
		}
	}
}

// FuzzAvroDirectRead: whatever the bytes, the direct read does not panic,
// and what it reads whole, goavro's path reads to the same value.
func FuzzAvroDirectRead(f *testing.F) {
	p, conv, bin := binFixture(f)
	for _, v := range binSamples() {
		b, err := bin.app(nil, reflect.ValueOf(&v).Elem())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got binRecord
		rest, err := bin.read(b, reflect.ValueOf(&got).Elem())
		if err != nil || len(rest) != 0 {
			return
		}
		native, rest, err := p.Codec.NativeFromBinary(b)
		if err != nil || len(rest) != 0 {
			t.Fatalf("direct read %+v, goavro: %v, %d bytes left", got, err, len(rest))
		}
		var want binRecord
		if err := conv.dec(native, reflect.ValueOf(&want).Elem()); err != nil {
			t.Fatalf("direct read %+v, goavro path: %v", got, err)
		}
		if !equalNaN(reflect.ValueOf(got), reflect.ValueOf(want)) {
			t.Fatalf("direct read %+v\ngoavro path %+v", got, want)
		}
	})
}

// equalNaN is reflect.DeepEqual with NaN equal to NaN (random bytes make
// NaNs, which the two paths read alike).
func equalNaN(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		return x == y || (math.IsNaN(x) && math.IsNaN(y))
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalNaN(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.Len() != b.Len() || a.IsNil() != b.IsNil() {
			return false
		}
		for i := range a.Len() {
			if !equalNaN(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for it := a.MapRange(); it.Next(); {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() || !equalNaN(it.Value(), bv) {
				return false
			}
		}
		return true
	case reflect.Struct:
		if a.Type() == avroTimeType {
			return reflect.DeepEqual(a.Interface(), b.Interface())
		}
		for i := range a.NumField() {
			if !equalNaN(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}
