package history_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/history"
)

func ack(p int32, off int64, v string) history.Send {
	return history.Send{Topic: "t", Partition: p, Key: "k" + v, Value: v, Offset: off}
}

func failed(v string) history.Send {
	return history.Send{Topic: "t", Partition: -1, Key: "k" + v, Value: v, Offset: -1, Err: errors.New("timed out")}
}

// scan builds a scan of partition p from its records, given as offset
// and value pairs; toEnd marks a read to the high watermark end.
func scan(seq int, p int32, start, end int64, toEnd bool, recs ...any) history.Scan {
	s := history.Scan{Seq: seq, Topic: "t", Partition: p, Start: start, End: end, ToEnd: toEnd}
	for i := 0; i < len(recs); i += 2 {
		v := recs[i+1].(string)
		s.Records = append(s.Records, history.Record{Offset: int64(recs[i].(int)), Key: "k" + v, Value: v})
	}
	return s
}

func kinds(as []history.Anomaly) string {
	var out []string
	for _, a := range as {
		out = append(out, string(a.Kind))
	}
	return strings.Join(out, ",")
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    history.History
		opt  history.Options
		// want lists the kinds of the failing anomalies, in report
		// order; empty means the run passes.
		want string
	}{
		{
			name: "clean",
			h: history.History{
				Sends: []history.Send{ack(0, 0, "a"), ack(0, 1, "b"), ack(1, 0, "c"), failed("d")},
				Scans: []history.Scan{
					scan(0, 0, 0, 2, false, 0, "a", 1, "b"),
					scan(1, 0, 0, 2, true, 0, "a", 1, "b"),
					scan(2, 1, 0, 1, true, 0, "c"),
				},
			},
			opt: history.Options{Idempotent: true},
		},
		{
			name: "a failed send may be written",
			h: history.History{
				Sends: []history.Send{ack(0, 0, "a"), failed("b")},
				Scans: []history.Scan{scan(0, 0, 0, 2, true, 0, "a", 1, "b")},
			},
		},
		{
			name: "lost: acked, not read back",
			h: history.History{
				Sends: []history.Send{ack(0, 0, "a"), ack(0, 1, "b")},
				Scans: []history.Scan{scan(0, 0, 0, 1, true, 0, "a")},
			},
			want: "lost",
		},
		{
			name: "lost: partition never read to the end",
			h: history.History{
				Sends: []history.Send{ack(0, 0, "a")},
				Scans: []history.Scan{scan(0, 0, 0, 1, false, 0, "a")},
			},
			want: "lost",
		},
		{
			name: "lost: acks=0 send with no offset",
			h: history.History{
				Sends: []history.Send{{Topic: "t", Partition: 0, Value: "a", Offset: -1}},
				Scans: []history.Scan{scan(0, 0, 0, 0, true)},
			},
			want: "lost",
		},
		{
			// The first attempt was written, its answer lost; the
			// retry was written again and acknowledged.
			name: "retry acknowledged at the second copy, non-idempotent",
			h: history.History{
				Sends: []history.Send{ack(0, 1, "a")},
				Scans: []history.Scan{scan(0, 0, 0, 2, true, 0, "a", 1, "a")},
			},
		},
		{
			name: "inconsistent: acknowledged at an offset that holds another record",
			h: history.History{
				Sends: []history.Send{ack(0, 1, "a"), failed("b")},
				Scans: []history.Scan{scan(0, 0, 0, 2, true, 0, "a", 1, "b")},
			},
			want: "inconsistent",
		},
		{
			name: "duplicate retried write, non-idempotent",
			h: history.History{
				Sends: []history.Send{ack(0, 0, "a")},
				Scans: []history.Scan{scan(0, 0, 0, 2, true, 0, "a", 1, "a")},
			},
		},
		{
			name: "duplicate retried write, idempotent",
			h: history.History{
				Sends: []history.Send{ack(0, 0, "a")},
				Scans: []history.Scan{scan(0, 0, 0, 2, true, 0, "a", 1, "a")},
			},
			opt:  history.Options{Idempotent: true},
			want: "duplicate",
		},
		{
			name: "inconsistent: one offset, two values",
			h: history.History{
				Sends: []history.Send{ack(0, 0, "a"), failed("b")},
				Scans: []history.Scan{
					scan(0, 0, 0, 1, false, 0, "b"),
					scan(1, 0, 0, 1, true, 0, "a"),
				},
			},
			want: "inconsistent",
		},
		{
			name: "inconsistent: read but never sent",
			h: history.History{
				Sends: []history.Send{ack(0, 0, "a")},
				Scans: []history.Scan{scan(0, 0, 0, 2, true, 0, "a", 1, "zz")},
			},
			want: "inconsistent",
		},
		{
			name: "gone: a later scan skipped a read record",
			h: history.History{
				Sends: []history.Send{failed("a"), ack(0, 1, "b")},
				Scans: []history.Scan{
					scan(0, 0, 0, 1, false, 0, "a"),
					scan(1, 0, 0, 2, true, 1, "b"),
				},
			},
			want: "gone",
		},
		{
			name: "gone: the log end fell below a read record",
			h: history.History{
				Sends: []history.Send{ack(0, 0, "a"), failed("b")},
				Scans: []history.Scan{
					scan(0, 0, 0, 2, false, 0, "a", 1, "b"),
					scan(1, 0, 0, 1, true, 0, "a"),
				},
			},
			want: "gone",
		},
		{
			name: "not gone: a later scan that started above it, or stopped below it",
			h: history.History{
				Sends: []history.Send{ack(0, 0, "a"), ack(0, 1, "b"), ack(0, 2, "c")},
				Scans: []history.Scan{
					scan(0, 0, 0, 3, false, 0, "a", 1, "b", 2, "c"),
					scan(1, 0, 1, 2, false, 1, "b"),
					scan(2, 0, 0, 3, true, 0, "a", 1, "b", 2, "c"),
				},
			},
		},
		{
			name: "not gone: an earlier scan skipped what a later one read",
			h: history.History{
				// Scan 0 passed offset 1 while it held a transaction
				// marker-sized gap; order matters: only later scans
				// can lose a record.
				Sends: []history.Send{ack(0, 0, "a"), ack(0, 2, "c")},
				Scans: []history.Scan{
					scan(0, 0, 0, 3, true, 0, "a", 2, "c"),
				},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := history.Check(tc.h, tc.opt)
			if got := kinds(rep.Anomalies()); got != tc.want {
				t.Fatalf("anomalies %q, want %q\n%v", got, tc.want, rep.Err())
			}
			if (rep.Err() == nil) != (tc.want == "") {
				t.Fatalf("Err() = %v with anomalies %q", rep.Err(), tc.want)
			}
		})
	}
}

func TestCheckCounts(t *testing.T) {
	h := history.History{
		Sends: []history.Send{ack(0, 0, "a"), ack(0, 1, "b"), failed("c"), ack(0, 3, "d")},
		Scans: []history.Scan{scan(0, 0, 0, 3, true, 0, "a", 1, "b", 2, "c")},
	}
	rep := history.Check(h, history.Options{})
	if rep.Acked != 3 || rep.Failed != 1 || rep.Read != 3 || rep.AckedAndRead != 2 || len(rep.Lost) != 1 {
		t.Fatalf("report %s", rep.Summary())
	}
	if l := rep.Lost[0]; l.Value != "d" || l.Offset != 3 {
		t.Fatalf("lost %v, want d at 3", l)
	}
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), `lost t/0@3 "d"`) {
		t.Fatalf("Err() = %v", err)
	}
}

func TestRecorder(t *testing.T) {
	var r history.Recorder
	r.Send(ack(0, 0, "a"))
	s := r.BeginScan("t", 0, 0)
	if !s.Add(history.Record{Offset: 0, Value: "a"}) {
		t.Fatal("first record refused")
	}
	if s.Add(history.Record{Offset: 0, Value: "a"}) {
		t.Fatal("a record at an offset already passed was taken")
	}
	s.Finish(5)
	h := r.History()
	if len(h.Sends) != 1 || len(h.Scans) != 1 {
		t.Fatalf("history %+v", h)
	}
	if sc := h.Scans[0]; sc.Start != 0 || sc.End != 5 || !sc.ToEnd || len(sc.Records) != 1 {
		t.Fatalf("scan %+v", sc)
	}
	if err := history.Check(h, history.Options{Idempotent: true}).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestCompareReplicas(t *testing.T) {
	recs := func(vs ...string) []history.Record {
		var out []history.Record
		for i, v := range vs {
			if v != "" { // "" is a gap (a control record, say)
				out = append(out, history.Record{Offset: int64(i), Key: "k", Value: v})
			}
		}
		return out
	}
	rep := func(id int32, start, end int64, r []history.Record) history.Replica {
		return history.Replica{Broker: id, LogStart: start, LogEnd: end, Records: r}
	}
	for _, tc := range []struct {
		name     string
		hw       int64
		replicas []history.Replica
		want     []int64 // divergent offsets
	}{
		{
			name: "identical",
			hw:   3,
			replicas: []history.Replica{
				rep(1, 0, 3, recs("a", "", "c")), rep(2, 0, 3, recs("a", "", "c")), rep(3, 0, 3, recs("a", "", "c")),
			},
		},
		{
			name: "differ only above the high watermark",
			hw:   2,
			replicas: []history.Replica{
				rep(1, 0, 3, recs("a", "b", "c")), rep(2, 0, 3, recs("a", "b", "x")),
			},
		},
		{
			name: "a lagging follower lacks the tail",
			hw:   3,
			replicas: []history.Replica{
				rep(1, 0, 3, recs("a", "b", "c")), rep(2, 0, 1, recs("a")),
			},
		},
		{
			name: "retention removed a prefix on one replica",
			hw:   3,
			replicas: []history.Replica{
				rep(1, 0, 3, recs("a", "b", "c")), rep(2, 2, 3, recs("", "", "c")),
			},
		},
		{
			name: "different value below the high watermark",
			hw:   3,
			replicas: []history.Replica{
				rep(1, 0, 3, recs("a", "b", "c")), rep(2, 0, 3, recs("a", "b", "c")), rep(3, 0, 3, recs("a", "x", "c")),
			},
			want: []int64{1},
		},
		{
			name: "a hole on one replica",
			hw:   3,
			replicas: []history.Replica{
				rep(1, 0, 3, recs("a", "b", "c")), rep(2, 0, 3, recs("a", "", "c")),
			},
			want: []int64{1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := history.CompareReplicas("t", 0, tc.hw, tc.replicas)
			if len(got) != len(tc.want) {
				t.Fatalf("divergences %v, want offsets %v", got, tc.want)
			}
			for i, a := range got {
				if a.Kind != history.Divergent || a.Offset != tc.want[i] {
					t.Fatalf("divergence %v, want offset %d", a, tc.want[i])
				}
			}
		})
	}
}
