package runnel

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func queueRecs(topic string, offset int64, ts ...int64) []*kgo.Record {
	var out []*kgo.Record
	for i, t := range ts {
		out = append(out, &kgo.Record{Topic: topic, Offset: offset + int64(i), Timestamp: time.UnixMilli(t)})
	}
	return out
}

func newTestQueues(topics ...string) *inputQueues {
	return newInputQueues(topics, func(string) bool { return false })
}

// takeAll takes records until next says none may go now.
func takeAll(q *inputQueues, now time.Time, idle time.Duration) []int64 {
	var ts []int64
	for {
		r, _, ok := q.next(now, idle, maxHoldBehind, math.MaxInt64)
		if !ok {
			return ts
		}
		ts = append(ts, r.Timestamp.UnixMilli())
	}
}

func TestInputQueuesTimestampOrderAcrossFetches(t *testing.T) {
	q := newTestQueues("bids", "auctions")
	t0 := time.Unix(1000, 0)
	// The first fetch brings bids far ahead, and auctions only to 2 of
	// an end of 10: the auctions partition is behind.
	q.fetched("bids", queueRecs("bids", 0, 2, 4, 6, 8, 10), 5, 0)
	q.fetched("auctions", queueRecs("auctions", 0, 1, 3), 10, 0)
	if got := takeAll(q, t0, 0); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("first fetch: processed %v, want [1 2 3] then hold for the auctions behind", got)
	}
	// Held, within the bound, across polls that bring nothing.
	if got := takeAll(q, t0.Add(maxHoldBehind/2), 0); len(got) != 0 {
		t.Fatalf("processed %v while auctions are behind", got)
	}
	// The next auctions come; the fetch leaves them behind still.
	q.fetched("auctions", queueRecs("auctions", 2, 5, 7, 9), 10, 0)
	if got := takeAll(q, t0.Add(maxHoldBehind/2), 0); !slices.Equal(got, []int64{4, 5, 6, 7, 8, 9}) {
		t.Fatalf("second fetch: processed %v", got)
	}
	// auctions is empty and behind (offset 5 of 10): bid 10 waits.
	if got := takeAll(q, t0.Add(maxHoldBehind/2), 0); len(got) != 0 {
		t.Fatalf("processed %v while auctions are behind", got)
	}
	// A fetch with no records does not say the partition is at its end
	// (the response may have run out of bytes before it).
	q.fetched("auctions", nil, 10, 0)
	if got := takeAll(q, t0.Add(maxHoldBehind/2), 0); len(got) != 0 {
		t.Fatalf("processed %v after an empty fetch of auctions behind", got)
	}
	q.fetched("auctions", queueRecs("auctions", 5, 11, 12, 13, 14, 15), 10, 0) // now at its end
	if got := takeAll(q, t0.Add(maxHoldBehind/2), 0); !slices.Equal(got, []int64{10, 11, 12, 13, 14, 15}) {
		t.Fatalf("auctions caught up: processed %v", got)
	}
}

func TestInputQueuesHoldBounds(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name  string
		other func(q *inputQueues)
		idle  time.Duration
		limit time.Duration
	}{
		{"unknown", func(*inputQueues) {}, 0, maxHoldBehind},
		{"behind", func(q *inputQueues) {
			q.listed("a", 0, 0) // at its end: b's record goes at once
			q.fetched("b", queueRecs("b", 0, 1), 5, 0)
			if got := takeAll(q, t0, 0); !slices.Equal(got, []int64{1}) {
				t.Fatalf("processed %v, want [1]", got)
			}
		}, 0, maxHoldBehind},
		{"listed behind", func(q *inputQueues) { q.listed("b", 3, 5) }, 0, maxHoldBehind},
		{"behind, idle longer", func(q *inputQueues) { q.listed("b", 3, 5) }, 2 * maxHoldBehind, 2 * maxHoldBehind},
		{"caught up", func(q *inputQueues) { q.listed("b", 5, 5) }, 0, 0},
		{"caught up, idle", func(q *inputQueues) { q.listed("b", 5, 5) }, time.Second, time.Second},
		{"empty partition", func(q *inputQueues) { q.fetched("b", nil, 7, 7) }, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newTestQueues("a", "b")
			tc.other(q)
			q.fetched("a", queueRecs("a", 0, 5, 6), 2, 0)
			if tc.limit > 0 {
				if got := takeAll(q, t0, tc.idle); len(got) != 0 {
					t.Fatalf("processed %v at once", got)
				}
				if !q.holding() {
					t.Fatal("not holding")
				}
				if got := takeAll(q, t0.Add(tc.limit-time.Millisecond), tc.idle); len(got) != 0 {
					t.Fatalf("processed %v before the bound", got)
				}
			}
			if got := takeAll(q, t0.Add(tc.limit), tc.idle); !slices.Equal(got, []int64{5, 6}) {
				t.Fatalf("at the bound: processed %v, want [5 6]", got)
			}
		})
	}
}

func TestInputQueuesPositionsAndClear(t *testing.T) {
	t0 := time.Unix(1000, 0)
	q := newTestQueues("a", "b")
	q.listed("a", 0, 10)
	q.listed("b", 0, 1)
	q.fetched("a", queueRecs("a", 0, 3, 4), 10, 0)
	ctl := queueRecs("b", 0, 100)[0]
	ctl.Attrs = kgo.NewRecordAttrs(kgo.RecordAttrsOpts{Control: true, Transactional: true})
	// A control record at the head neither counts as a record to
	// process nor lets b hold the others back once passed.
	q.fetched("b", append([]*kgo.Record{ctl}, queueRecs("b", 1, 1)...), 2, 0)
	if got := takeAll(q, t0, 0); !slices.Equal(got, []int64{1, 3, 4}) {
		t.Fatalf("processed %v, want [1 3 4]", got)
	}
	for _, p := range q.parts {
		want := map[string]int64{"a": 2, "b": 2}[p.topic]
		if !p.taken || p.done.Offset != want {
			t.Fatalf("%s: done %v taken %v, want %d", p.topic, p.done, p.taken, want)
		}
	}
	q.fetched("a", queueRecs("a", 2, 7), 10, 0)
	q.clear()
	if got := takeAll(q, t0, 0); len(got) != 0 {
		t.Fatalf("after clear: processed %v", got)
	}
	// Cleared, a partition's position is unknown until rewound: b holds.
	q.fetched("a", queueRecs("a", 2, 7), 10, 0)
	if got := takeAll(q, t0, 0); len(got) != 0 {
		t.Fatalf("after clear: processed %v with b unknown", got)
	}
	q.rewound("b", 2)
	if got := takeAll(q, t0, 0); !slices.Equal(got, []int64{7}) {
		t.Fatalf("after rewound: processed %v, want [7]", got)
	}
	// One source: never held, offset order.
	one := newTestQueues("a")
	one.fetched("a", queueRecs("a", 0, 2, 1), 100, 0)
	if got := takeAll(one, t0, 0); !slices.Equal(got, []int64{2, 1}) {
		t.Fatalf("one source: processed %v, want offset order [2 1]", got)
	}
}

// TestInputQueuesGiveUpOnceUntilHeardOf: a partition that held the others
// as long as it may is taken as at its end until a fetch tells its
// position, so its unknown position does not hold each later record back
// again; once heard of behind, it holds again.
func TestInputQueuesGiveUpOnceUntilHeardOf(t *testing.T) {
	t0 := time.Unix(1000, 0)
	q := newTestQueues("a", "b") // b's position is never listed
	q.fetched("a", queueRecs("a", 0, 1), 10, 0)
	if got := takeAll(q, t0, 0); len(got) != 0 {
		t.Fatalf("processed %v with b unknown", got)
	}
	if got := takeAll(q, t0.Add(maxHoldBehind), 0); !slices.Equal(got, []int64{1}) {
		t.Fatalf("at the bound: processed %v, want [1]", got)
	}
	// b has been given up: the next records of a go at once.
	q.fetched("a", queueRecs("a", 1, 2), 10, 0)
	if got := takeAll(q, t0.Add(maxHoldBehind+time.Millisecond), 0); !slices.Equal(got, []int64{2}) {
		t.Fatalf("b given up: processed %v, want [2]", got)
	}
	// A fetch of b without records does not tell its position.
	q.fetched("b", nil, 5, 0)
	q.fetched("a", queueRecs("a", 2, 3), 10, 0)
	if got := takeAll(q, t0.Add(maxHoldBehind+time.Millisecond), 0); !slices.Equal(got, []int64{3}) {
		t.Fatalf("b still given up: processed %v, want [3]", got)
	}
	// b's records tell it is behind (2 of 5): it holds again.
	q.fetched("b", queueRecs("b", 0, 4, 5), 5, 0)
	q.fetched("a", queueRecs("a", 3, 6), 10, 0)
	t1 := t0.Add(time.Minute)
	if got := takeAll(q, t1, 0); !slices.Equal(got, []int64{4, 5}) {
		t.Fatalf("processed %v, want [4 5] then hold for b behind", got)
	}
	if got := takeAll(q, t1.Add(maxHoldBehind-time.Millisecond), 0); len(got) != 0 {
		t.Fatalf("processed %v while b is behind", got)
	}
}
