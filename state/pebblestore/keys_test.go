package pebblestore

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestEscapedOrder checks that escaping keeps byte order, also with a
// suffix after the escaped part, and round-trips.
func TestEscapedOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	gen := func() []byte {
		b := make([]byte, rng.IntN(4))
		for i := range b {
			b[i] = []byte{0, 1, 0xfe, 0xff, 'a'}[rng.IntN(5)]
		}
		return b
	}
	for range 20000 {
		a, b := gen(), gen()
		sa, sb := gen(), gen()
		ea := append(appendEscaped(nil, a), sa...)
		eb := append(appendEscaped(nil, b), sb...)
		want := bytes.Compare(a, b)
		if want == 0 {
			want = bytes.Compare(sa, sb)
		}
		if got := bytes.Compare(ea, eb); got != want {
			t.Fatalf("order of %q+%q vs %q+%q: %d, want %d", a, sa, b, sb, got, want)
		}
		dec, rest, err := readEscaped(nil, ea)
		if err != nil || !bytes.Equal(dec, a) || !bytes.Equal(rest, sa) {
			t.Fatalf("readEscaped(%q) = %q, %q, %v", ea, dec, rest, err)
		}
	}
	for _, bad := range [][]byte{{'a'}, {0}, {0, 2}} {
		if _, _, err := readEscaped(nil, bad); err == nil {
			t.Errorf("readEscaped(%q) succeeded", bad)
		}
	}
}

func TestTimeOrder(t *testing.T) {
	times := []int64{-1 << 63, -5, -1, 0, 1, 7, 1<<63 - 1}
	for i := 1; i < len(times); i++ {
		if bytes.Compare(appendTime(nil, times[i-1]), appendTime(nil, times[i])) >= 0 {
			t.Fatalf("%d does not sort before %d", times[i-1], times[i])
		}
		if got := readTime(appendTime(nil, times[i])); got != times[i] {
			t.Fatalf("readTime = %d, want %d", got, times[i])
		}
	}
}
