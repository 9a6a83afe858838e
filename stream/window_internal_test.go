package stream

import (
	"reflect"
	"testing"
)

// TestHasPointers: a windowed aggregation fetches into a reused buffer
// only for aggregates that cannot hold on to the bytes they were decoded
// from.
func TestHasPointers(t *testing.T) {
	type counts struct {
		N   int64
		Sum [2]float64
		OK  bool
	}
	type named struct {
		N    int64
		Name string
	}
	for _, c := range []struct {
		t    reflect.Type
		want bool
	}{
		{reflect.TypeFor[int64](), false},
		{reflect.TypeFor[counts](), false},
		{reflect.TypeFor[[0]*int](), false},
		{reflect.TypeFor[[]byte](), true},
		{reflect.TypeFor[string](), true},
		{reflect.TypeFor[named](), true},
		{reflect.TypeFor[[2][]int](), true},
		{reflect.TypeFor[map[string]int](), true},
		{reflect.TypeFor[*int64](), true},
		{reflect.TypeFor[any](), true},
	} {
		if got := hasPointers(c.t); got != c.want {
			t.Errorf("hasPointers(%v) = %v, want %v", c.t, got, c.want)
		}
	}
}
