package runnel

import (
	"testing"
	"time"
)

// TestStallWatch drives the watchdog's state machine with its own clock:
// a task is stalled once its lag stays above zero with the same positions
// for the timeout, once only, and no longer when its position moves or
// its lag reaches zero.
func TestStallWatch(t *testing.T) {
	w := stallWatch{timeout: 60 * time.Second}
	t0 := time.Unix(1_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	a, b := taskKey{0, 0}, taskKey{0, 1}
	pos := func(o int64) map[string]int64 { return map[string]int64{"in-0": o} }

	steps := []struct {
		k    taskKey
		s    int
		pos  int64
		lag  int64
		want stallEvent
	}{
		{a, 0, 10, 5, stallNone},
		{a, 59, 10, 5, stallNone},    // not yet the timeout
		{b, 0, 7, 0, stallNone},      // idle: no lag
		{a, 60, 10, 5, stallStarted}, // 60 s, lag 5, no move
		{a, 75, 10, 9, stallNone},    // reported once
		{b, 200, 7, 0, stallNone},    // idle tasks never stall
		{a, 80, 11, 9, stallResolved},
		{a, 139, 11, 9, stallNone},
		{a, 140, 11, 9, stallStarted},
		{a, 141, 11, 0, stallResolved}, // caught up (the end moved back: the log was truncated)
		{a, 300, 11, 0, stallNone},
		{a, 301, 11, 3, stallNone}, // new input: the clock runs from the last check with no lag
		{a, 359, 11, 3, stallNone},
		{a, 360, 11, 3, stallStarted},
	}
	for i, s := range steps {
		if got := w.observe(s.k, at(s.s), pos(s.pos), s.lag); got != s.want {
			t.Fatalf("step %d (%+v): event %d, want %d", i, s, got, s.want)
		}
	}
	if gone := w.forget(func(k taskKey) bool { return k == b }); len(gone) != 1 || gone[0] != a {
		t.Fatalf("forget: stalled tasks dropped %v, want [%v]", gone, a)
	}
	if _, ok := w.tasks[a]; ok {
		t.Fatal("forget kept the task")
	}

	off := stallWatch{}
	if off.due(at(1000)) {
		t.Fatal("a zero timeout checks")
	}
	w.last = at(0)
	if w.due(at(9)) || !w.due(at(10)) {
		t.Fatalf("checks every %v, want 10 s for a 60 s timeout", w.checkEvery())
	}
}
