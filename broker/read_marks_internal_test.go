package broker

import (
	"testing"
	"time"
)

// readMarks' lowest mark against the readers seen: it follows the
// slowest, forgets a reader silent past readMarkIdle, and with more than
// maxReadMarks readers lets the longest silent go.
func TestReadMarks(t *testing.T) {
	var r readMarks
	sec := int64(time.Second)
	steps := []struct {
		conn      uint64
		off, at   int64
		want      int64
		wantMarks int
	}{
		{1, 100, 0, 100, 1},
		{2, 50, 0, 50, 2},            // a slower reader holds the mark
		{1, 200, 1 * sec, 50, 2},     // the faster one moving changes nothing
		{2, 300, 2 * sec, 200, 2},    // the slower one passes it
		{2, 250, 3 * sec, 200, 2},    // a reader seeking back lowers its own mark
		{1, 400, 4 * sec, 250, 2},    //
		{2, 450, 20 * sec, 400, 2},   //
		{3, 10, 35 * sec, 10, 2},     // 1 is silent past the idle time (seen at 4 s)
		{2, 500, 36 * sec, 10, 2},    //
		{3, 600, 36 * sec, 500, 2},   //
		{4, 700, 70 * sec, 700, 1},   // every other reader gone quiet
		{4, 800, 70*sec + 1, 800, 1}, //
		{5, 900, 70*sec + 2, 800, 2}, //
		{4, 1000, 70*sec + 3, 900, 2},
	}
	for i, s := range steps {
		if got := r.note(s.conn, s.off, s.at); got != s.want || len(r.marks) != s.wantMarks {
			t.Fatalf("step %d (conn %d at %d): mark %d over %d readers, want %d over %d", i, s.conn, s.off, got, len(r.marks), s.want, s.wantMarks)
		}
	}

	// Full: the longest silent reader (conn 100, at offset 1) gives way.
	r = readMarks{}
	r.note(100, 1, 0)
	for c := range uint64(maxReadMarks - 1) {
		r.note(c, 1000, sec)
	}
	if got := r.note(200, 2000, 2*sec); got != 1000 || len(r.marks) != maxReadMarks {
		t.Fatalf("mark %d over %d readers, want 1000 over %d", got, len(r.marks), maxReadMarks)
	}
}

// active, which direct writes go by: a partition counts as read while
// any connection fetched it within readMarkIdle, and not before any has.
func TestReadMarksActive(t *testing.T) {
	var r readMarks
	sec := int64(time.Second)
	if r.active(0) {
		t.Fatal("active before any fetch")
	}
	r.note(1, 100, 10*sec)
	r.note(2, 100, 20*sec)
	for _, c := range []struct {
		at   int64
		want bool
	}{
		{10 * sec, true},
		{40 * sec, true},    // 1 is quiet, 2 fetched 20 s ago
		{50 * sec, true},    // 2 exactly readMarkIdle ago
		{50*sec + 1, false}, // both quiet
		{1000 * sec, false}, //
	} {
		if got := r.active(c.at); got != c.want {
			t.Fatalf("active at %d s: %t, want %t", c.at/sec, got, c.want)
		}
	}
}
