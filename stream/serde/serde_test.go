package serde_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/runnel-dev/runnel/stream/serde"
)

func roundTrip[T any](t *testing.T, s serde.Serde[T], v T, want []byte) {
	t.Helper()
	b, err := s.Serialize(v)
	if err != nil {
		t.Fatalf("Serialize(%v): %v", v, err)
	}
	if want != nil && !bytes.Equal(b, want) {
		t.Fatalf("Serialize(%v) = %x, want %x", v, b, want)
	}
	got, err := s.Deserialize(b)
	if err != nil {
		t.Fatalf("Deserialize(%x): %v", b, err)
	}
	if !reflect.DeepEqual(got, v) && !(isNaN(any(v)) && isNaN(any(got))) {
		t.Fatalf("round trip of %v gave %v", v, got)
	}
}

func isNaN(v any) bool {
	f, ok := v.(float64)
	return ok && math.IsNaN(f)
}

// TestKafkaEncodings checks the fixed-width serdes against the bytes
// Kafka's IntegerSerializer, LongSerializer and DoubleSerializer write:
// big-endian two's complement, and IEEE 754 bits for doubles.
func TestKafkaEncodings(t *testing.T) {
	roundTrip(t, serde.Int32, 1, []byte{0, 0, 0, 1})
	roundTrip(t, serde.Int32, -1, []byte{0xff, 0xff, 0xff, 0xff})
	roundTrip(t, serde.Int32, math.MinInt32, []byte{0x80, 0, 0, 0})
	roundTrip(t, serde.Int64, 258, []byte{0, 0, 0, 0, 0, 0, 1, 2})
	roundTrip(t, serde.Int64, -2, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe})
	roundTrip(t, serde.Int64, math.MaxInt64, []byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	roundTrip(t, serde.Float64, 1.0, []byte{0x3f, 0xf0, 0, 0, 0, 0, 0, 0})
	roundTrip(t, serde.Float64, -2.5, []byte{0xc0, 0x04, 0, 0, 0, 0, 0, 0})
	roundTrip(t, serde.Float64, math.Inf(1), []byte{0x7f, 0xf0, 0, 0, 0, 0, 0, 0})
	roundTrip(t, serde.Float64, math.NaN(), nil)
	roundTrip(t, serde.String, "héllo", []byte("héllo"))
	roundTrip(t, serde.String, "", []byte{})
	roundTrip(t, serde.Bytes, []byte{0, 1, 2}, []byte{0, 1, 2})
}

func TestWrongLengths(t *testing.T) {
	for _, b := range [][]byte{nil, {}, {1, 2, 3}, {1, 2, 3, 4, 5}} {
		if _, err := serde.Int32.Deserialize(b); !errors.Is(err, serde.ErrLength) {
			t.Errorf("Int32.Deserialize(%x): %v", b, err)
		}
	}
	for _, b := range [][]byte{nil, {1}, make([]byte, 9)} {
		if _, err := serde.Int64.Deserialize(b); !errors.Is(err, serde.ErrLength) {
			t.Errorf("Int64.Deserialize(%x): %v", b, err)
		}
		if _, err := serde.Float64.Deserialize(b); !errors.Is(err, serde.ErrLength) {
			t.Errorf("Float64.Deserialize(%x): %v", b, err)
		}
	}
}

type point struct {
	X, Y  int
	Label string            `json:"label,omitempty"`
	Tags  map[string]string `json:"tags,omitempty"`
}

func TestJSON(t *testing.T) {
	s := serde.JSON[point]()
	roundTrip(t, s, point{X: 1, Y: -2, Label: "p"}, []byte(`{"X":1,"Y":-2,"label":"p"}`))
	// Map keys are sorted: equal values give equal bytes.
	roundTrip(t, s, point{Tags: map[string]string{"b": "2", "a": "1"}}, []byte(`{"X":0,"Y":0,"tags":{"a":"1","b":"2"}}`))
	roundTrip(t, serde.JSON[*point](), nil, []byte("null"))
	roundTrip(t, serde.JSON[[]int](), []int{3, 1}, []byte("[3,1]"))
	if _, err := s.Deserialize([]byte("{")); err == nil {
		t.Error("Deserialize of broken JSON succeeded")
	}
}

// TestNilHandling: the framework never hands serdes a null, but serdes
// given empty or nil input behave predictably.
func TestNilHandling(t *testing.T) {
	if v, err := serde.String.Deserialize(nil); err != nil || v != "" {
		t.Errorf("String.Deserialize(nil) = %q, %v", v, err)
	}
	if v, err := serde.Bytes.Deserialize(nil); err != nil || v != nil {
		t.Errorf("Bytes.Deserialize(nil) = %v, %v", v, err)
	}
	if b, err := serde.Bytes.Serialize(nil); err != nil || b != nil {
		t.Errorf("Bytes.Serialize(nil) = %v, %v", b, err)
	}
	if _, err := serde.JSON[point]().Deserialize(nil); err == nil {
		t.Error("JSON.Deserialize(nil) succeeded")
	}
}

func TestDefault(t *testing.T) {
	for _, c := range []struct {
		got, want any
	}{
		{serde.Default[string](), serde.String},
		{serde.Default[[]byte](), serde.Bytes},
		{serde.Default[int32](), serde.Int32},
		{serde.Default[int64](), serde.Int64},
		{serde.Default[float64](), serde.Float64},
		{serde.Default[point](), serde.JSON[point]()},
	} {
		if c.got != c.want {
			t.Errorf("Default = %v, want %v", c.got, c.want)
		}
	}
	f := serde.Func(func(v int) ([]byte, error) { return []byte{byte(v)}, nil },
		func(b []byte) (int, error) { return int(b[0]), nil })
	roundTrip(t, f, 7, []byte{7})
}

// TestAppendIsSerialize checks that the serdes that append write exactly
// what Serialize returns, after what the buffer holds.
func TestAppendIsSerialize(t *testing.T) {
	checkAppend(t, serde.String, "", "a", "héllo")
	checkAppend(t, serde.Int32, 0, -1, math.MaxInt32)
	checkAppend(t, serde.Int64, 0, -1, math.MinInt64)
	checkAppend(t, serde.Float64, 0, -1.5, math.Inf(1))
}

func checkAppend[T any](t *testing.T, s serde.Serde[T], values ...T) {
	t.Helper()
	a, ok := s.(interface {
		Append(b []byte, v T) ([]byte, error)
	})
	if !ok {
		t.Fatalf("%v does not append", s)
	}
	for _, v := range values {
		want, err := s.Serialize(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Append([]byte("prefix"), v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "prefix"+string(want) {
			t.Errorf("%v: Append(%v) = %q, want %q after the prefix", s, v, got, want)
		}
	}
}
