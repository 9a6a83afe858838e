package runnel

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/nexmark"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
)

func TestAlignGroups(t *testing.T) {
	build := func(q string) []int {
		topo, err := nexmark.Queries[q].Build()
		if err != nil {
			t.Fatal(err)
		}
		return alignGroups(topo)
	}
	// q8: persons and auctions rekeyed (sub-topologies 0 and 1) meet in
	// the join (2), which reads repartition topics and is not aligned.
	if g := build("q8"); len(g) != 3 || g[0] < 0 || g[0] != g[1] || g[2] != -1 {
		t.Errorf("q8: groups %v, want 0 and 1 together, 2 alone", g)
	}
	// q1: one sub-topology, nothing downstream.
	if g := build("q1"); !slices.Equal(g, []int{-1}) {
		t.Errorf("q1: groups %v, want [-1]", g)
	}
	// Two pipelines that never meet align apart: a backlog in one does
	// not hold the other back.
	b := stream.NewBuilder()
	for _, topic := range []string{"clicks", "views"} {
		s := stream.From(b, topic, serde.String, serde.String)
		stream.GroupBy(s, func(_, v string) string { return v }, stream.Named(topic+"-by-page")).Count(stream.Materialized(topic + "-counts"))
	}
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	g := alignGroups(topo)
	if len(g) != 4 {
		t.Fatalf("two pipelines: %d sub-topologies (%v), want 4", len(g), g)
	}
	var sources []int
	for _, s := range topo.SubTopologies() {
		if src := s.SourceTopics(); len(src) == 1 && (src[0] == "clicks" || src[0] == "views") {
			if g[s.ID()] < 0 {
				t.Errorf("sub-topology %d reading %v is not aligned: %v", s.ID(), src, g)
			}
			sources = append(sources, g[s.ID()])
		} else if g[s.ID()] != -1 {
			t.Errorf("sub-topology %d reading %v is aligned: %v", s.ID(), src, g)
		}
	}
	if len(sources) != 2 || sources[0] == sources[1] {
		t.Errorf("the two pipelines' sources are in groups %v, want two different ones", sources)
	}
}

func TestInputQueuesFrontier(t *testing.T) {
	q := newTestQueues("persons", "auctions")
	if _, empty, ok := q.frontier(); !ok || !empty {
		t.Fatalf("nothing fetched: frontier ok %v empty %v, want a partition not yet fetched to hold", ok, empty)
	}
	q.fetched("persons", queueRecs("persons", 0, 5, 9), 2, 0)
	q.fetched("auctions", queueRecs("auctions", 0, 7), 4, 0)
	if ts, empty, ok := q.frontier(); ts != 5 || empty || !ok {
		t.Fatalf("frontier %d (empty %v, ok %v), want 5 from a queued record", ts, empty, ok)
	}
	// A limit keeps the task from taking beyond it.
	if got := takeLimited(q, 7); !slices.Equal(got, []int64{5, 7}) {
		t.Fatalf("took %v up to 7, want [5 7]", got)
	}
	// auctions is empty and behind (1 of 4): the frontier is its last
	// record's time, whatever persons holds.
	if ts, empty, ok := q.frontier(); ts != 7 || !empty || !ok {
		t.Fatalf("frontier %d (empty %v, ok %v), want 7 from the empty auctions behind", ts, empty, ok)
	}
	// At its end, an empty partition no longer holds.
	q.fetched("auctions", nil, 1, 0)
	if ts, empty, ok := q.frontier(); ts != 9 || empty || !ok {
		t.Fatalf("frontier %d (empty %v, ok %v), want 9", ts, empty, ok)
	}
	if got := takeLimited(q, math.MaxInt64); !slices.Equal(got, []int64{9}) {
		t.Fatalf("took %v, want [9]", got)
	}
	if _, _, ok := q.frontier(); ok {
		t.Fatal("every queue empty and at its end: the task still has a frontier")
	}
}

func takeLimited(q *inputQueues, limit int64) []int64 {
	var ts []int64
	for {
		r, _, ok := q.next(time.Unix(0, 0), 0, maxHoldBehind, limit)
		if !ok {
			return ts
		}
		ts = append(ts, r.Timestamp.UnixMilli())
	}
}

func TestAlignerLimits(t *testing.T) {
	task := func(sub int, align int, topic string) *runTask {
		return &runTask{key: taskKey{sub, 0}, align: align, in: newTestQueues(topic)}
	}
	persons, auctions, join := task(0, 0, "persons"), task(1, 0, "auctions"), task(2, -1, "joined")
	tasks := map[taskKey]*runTask{persons.key: persons, auctions.key: auctions, join.key: join}
	persons.in.fetched("persons", queueRecs("persons", 0, 1000, 60_000, 120_000), 3, 0)
	auctions.in.fetched("auctions", queueRecs("auctions", 0, 1000, 2000, 3000), 10, 0)
	join.in.fetched("joined", queueRecs("joined", 0, 500_000), 1, 0)
	a := newAligner(time.Second)
	t0 := time.Unix(1000, 0)
	a.update(tasks, nil, t0, maxHoldBehind)
	if l := a.limit(persons); l != 2000 {
		t.Fatalf("limit %d, want the earliest head (1000) plus the drift", l)
	}
	if l := a.limit(join); l != math.MaxInt64 {
		t.Fatalf("a task that is not aligned has limit %d", l)
	}
	takeLimited(persons.in, a.limit(persons))
	takeLimited(auctions.in, a.limit(auctions))
	a.update(tasks, nil, t0, maxHoldBehind)
	if l := a.limit(persons); l != 4000 {
		t.Fatalf("limit %d, want auctions' head (3000) plus the drift", l)
	}
	if got := takeLimited(persons.in, a.limit(persons)); len(got) != 0 {
		t.Fatalf("persons took %v beyond the limit", got)
	}
	if !a.holds(persons) || a.holds(auctions) || a.holds(join) {
		t.Fatalf("holds: persons %v auctions %v join %v, want persons only (the stall watchdog spares it)", a.holds(persons), a.holds(auctions), a.holds(join))
	}
	takeLimited(auctions.in, a.limit(auctions))
	// auctions is now empty and behind (3 of 10): persons, at 60,000,
	// waits at auctions' last record's time plus the drift.
	a.update(tasks, nil, t0, maxHoldBehind)
	if l := a.limit(persons); l != 4000 {
		t.Fatalf("limit %d, want auctions' last record (3000) plus the drift", l)
	}
	// A task assigned and not yet running holds its group as a partition
	// not yet fetched does...
	a.update(tasks, []int{0}, t0, maxHoldBehind)
	if l := a.limit(persons); l > 0 {
		t.Fatalf("limit %d while a task of the group starts", l)
	}
	// ...and no longer than the bound, after which the group's empty
	// partitions stop holding it until a fetch tells of them.
	a.update(tasks, []int{0}, t0.Add(maxHoldBehind), maxHoldBehind)
	if l := a.limit(persons); l != 61_000 {
		t.Fatalf("limit %d after the hold bound, want persons' head (60,000) plus the drift", l)
	}
	auctions.in.fetched("auctions", queueRecs("auctions", 3, 4000), 10, 0)
	a.update(tasks, nil, t0.Add(maxHoldBehind), maxHoldBehind)
	if l := a.limit(persons); l != 5000 {
		t.Fatalf("limit %d once auctions fetched again, want 5000", l)
	}
	// Off: no limits.
	off := newAligner(-1)
	off.update(tasks, nil, t0, maxHoldBehind)
	if l := off.limit(persons); l != math.MaxInt64 {
		t.Fatalf("alignment off: limit %d", l)
	}
}
