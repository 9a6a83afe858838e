package broker

import (
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// appendConcurrently runs every index exactly once, whatever n, and a
// panic in any append comes back on the caller's goroutine (where the
// connection's handler recovers it).
func TestAppendConcurrently(t *testing.T) {
	for _, n := range []int{1, 2, maxConcurrentAppends, 3*maxConcurrentAppends + 1} {
		runs := make([]atomic.Int32, n)
		var inFlight, most atomic.Int32
		appendConcurrently(n, func(i int) {
			cur := inFlight.Add(1)
			for {
				m := most.Load()
				if cur <= m || most.CompareAndSwap(m, cur) {
					break
				}
			}
			runs[i].Add(1)
			inFlight.Add(-1)
		})
		for i := range runs {
			if got := runs[i].Load(); got != 1 {
				t.Fatalf("n=%d: index %d ran %d times", n, i, got)
			}
		}
		if m := most.Load(); m > maxConcurrentAppends {
			t.Fatalf("n=%d: %d appends at once, at most %d allowed", n, m, maxConcurrentAppends)
		}
	}
	for _, at := range []int{0, 5} {
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Fatalf("panic in append %d: recovered %v, want boom", at, r)
				}
			}()
			appendConcurrently(10, func(i int) {
				if i == at {
					panic("boom")
				}
			})
			t.Fatalf("panic in append %d: not raised", at)
		}()
	}
}

func TestDistinctPartitions(t *testing.T) {
	ps := func(ids ...int32) []kmsg.ProduceRequestTopicPartition {
		var out []kmsg.ProduceRequestTopicPartition
		for _, id := range ids {
			p := kmsg.NewProduceRequestTopicPartition()
			p.Partition = id
			out = append(out, p)
		}
		return out
	}
	for _, c := range []struct {
		ids  []int32
		want bool
	}{{nil, true}, {[]int32{0}, true}, {[]int32{0, 1, 2}, true}, {[]int32{0, 1, 0}, false}, {[]int32{3, 3}, false}} {
		if got := distinctPartitions(ps(c.ids...)); got != c.want {
			t.Errorf("%v: %t, want %t", c.ids, got, c.want)
		}
	}
}
