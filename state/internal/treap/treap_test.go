package treap

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// checkInvariants walks t and fails on a heap or search-order violation.
func checkInvariants(t *testing.T, m *Map[int, int]) {
	t.Helper()
	var walk func(n *node[int, int], lo, hi *int) int
	walk = func(n *node[int, int], lo, hi *int) int {
		if n == nil {
			return 0
		}
		if (lo != nil && n.key <= *lo) || (hi != nil && n.key >= *hi) {
			t.Fatalf("key %d out of order", n.key)
		}
		for _, c := range []*node[int, int]{n.left, n.right} {
			if c != nil && c.prio > n.prio {
				t.Fatalf("heap order broken at %d", n.key)
			}
		}
		return 1 + walk(n.left, lo, &n.key) + walk(n.right, &n.key, hi)
	}
	if got := walk(m.root, nil, nil); got != m.n {
		t.Fatalf("walked %d nodes, Len %d", got, m.n)
	}
}

// TestAgainstSortedSlice checks Map against a plain model, including that
// iterators keep their snapshot through later writes.
func TestAgainstSortedSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := New[int, int](cmp.Compare[int])
	model := map[int]int{}
	sorted := func(mm map[int]int) []int {
		ks := make([]int, 0, len(mm))
		for k := range mm {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	for i := 0; i < 5000; i++ {
		k := rng.IntN(300)
		switch rng.IntN(4) {
		case 0, 1:
			old, ok := m.Set(k, i)
			mo, mok := model[k]
			if ok != mok || old != mo {
				t.Fatalf("Set(%d): got %d,%t want %d,%t", k, old, ok, mo, mok)
			}
			model[k] = i
		case 2:
			old, ok := m.Delete(k)
			mo, mok := model[k]
			if ok != mok || old != mo {
				t.Fatalf("Delete(%d): got %d,%t want %d,%t", k, old, ok, mo, mok)
			}
			delete(model, k)
		case 3:
			from := rng.IntN(300)
			want := sorted(model)
			asc := m.Ascend(from, true)
			desc := m.Descend(from, true)
			m.Set(rng.IntN(300), -1) // must not show up in the open iterators
			m.Delete(rng.IntN(300))
			var got []int
			for asc.Next() {
				got = append(got, asc.Key())
			}
			var wantAsc []int
			for _, k := range want {
				if k >= from {
					wantAsc = append(wantAsc, k)
				}
			}
			if !slices.Equal(got, wantAsc) {
				t.Fatalf("Ascend(%d) = %v, want %v", from, got, wantAsc)
			}
			got = got[:0]
			for desc.Next() {
				got = append(got, desc.Key())
			}
			var wantDesc []int
			for _, k := range slices.Backward(want) {
				if k <= from {
					wantDesc = append(wantDesc, k)
				}
			}
			if !slices.Equal(got, wantDesc) {
				t.Fatalf("Descend(%d) = %v, want %v", from, got, wantDesc)
			}
			// Resynchronise the model with the two writes above.
			model = map[int]int{}
			for it := m.Ascend(0, false); it.Next(); {
				model[it.Key()] = it.Value()
			}
		}
		if i%500 == 0 {
			checkInvariants(t, m)
		}
	}
	checkInvariants(t, m)
}
