package log

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// appendKV appends one batch and records its records in ref by offset.
func appendKV(t testing.TB, l *Log, ref map[int64]kv, recs []kv, codec int, ts int64) AppendResult {
	t.Helper()
	res := mustAppend(t, l, keyedBatch(t, recs, codec, ts))
	for i, r := range recs {
		ref[res.BaseOffset+int64(i)] = r
	}
	return res
}

// mustClean flushes (a clean stays below the flushed offset) and cleans.
func mustClean(t testing.TB, l *Log, now time.Time) CleanStats {
	t.Helper()
	if err := l.WaitFlushed(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	st, err := l.Clean(now)
	if err != nil {
		t.Fatalf("clean: %v", err)
	}
	checkInvariants(t, l)
	return st
}

func activeBytes(t testing.TB, l *Log) (int64, []byte) {
	t.Helper()
	l.appendMu.Lock()
	s := l.active
	err := s.writePending() // what a flush writes (writeback.go)
	l.appendMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(s.path(logSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return s.base, raw
}

// checkCleaned checks a log's records against every record appended
// (ref): offsets unchanged, contents as appended, and below the clean
// point at most one record per key, its newest there.
func checkCleaned(t testing.TB, recs []offRec, ref map[int64]kv, cleanedTo int64) {
	t.Helper()
	newest := make(map[string]int64) // below cleanedTo
	for off, r := range ref {
		if off < cleanedTo && off > newest[r.key]-1 {
			if o, ok := newest[r.key]; !ok || off > o {
				newest[r.key] = off
			}
		}
	}
	seen := make(map[string]bool)
	prev := int64(-1)
	for _, r := range recs {
		if r.control {
			continue
		}
		if r.off <= prev {
			t.Fatalf("offset %d after %d", r.off, prev)
		}
		prev = r.off
		w, ok := ref[r.off]
		if !ok || w.key != r.key || w.tomb != r.tomb || (!w.tomb && w.value != r.value) {
			t.Fatalf("offset %d holds %+v, appended %+v", r.off, r, w)
		}
		if r.off < cleanedTo {
			if seen[r.key] {
				t.Fatalf("key %q twice below %d", r.key, cleanedTo)
			}
			seen[r.key] = true
			if r.off != newest[r.key] {
				t.Fatalf("key %q kept at %d, newest below %d is %d", r.key, r.off, cleanedTo, newest[r.key])
			}
		}
	}
}

// refLatest is the latest-value view of everything appended.
func refLatest(ref map[int64]kv) map[string]string {
	var recs []offRec
	for off, r := range ref {
		recs = append(recs, offRec{off: off, key: r.key, value: r.value, tomb: r.tomb})
	}
	sortRecs(recs)
	return latest(recs)
}

func sortRecs(recs []offRec) {
	for i := 1; i < len(recs); i++ {
		for j := i; j > 0 && recs[j].off < recs[j-1].off; j-- {
			recs[j], recs[j-1] = recs[j-1], recs[j]
		}
	}
}

// TestCleanLatestPerKey checks, on random workloads, that cleaning keeps
// exactly the newest record per key below the clean point, never changes
// an offset or the active segment, and that replaying the log from its
// start always gives the latest value per key; and that tombstones go
// once delete.retention.ms has passed.
func TestCleanLatestPerKey(t *testing.T) {
	for _, codec := range []int{codecNone, codecGzip, codecSnappy, codecLz4, codecZstd, -1} {
		t.Run(fmt.Sprint("codec", codec), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(codec+10), 7))
			clk := newClock()
			cfg := compactConfig()
			cfg.SegmentBytes = 1500
			cfg.DeleteRetention = time.Hour
			dir := t.TempDir()
			l := openLog(t, dir, cfg, WithClock(clk.Now))
			ref := make(map[int64]kv)
			for round := 0; round < 5; round++ {
				for i := 0; i < 50; i++ {
					recs := make([]kv, 1+rng.IntN(5))
					for j := range recs {
						recs[j] = kv{key: fmt.Sprintf("k%d", rng.IntN(30)), value: fmt.Sprintf("v%d-%d", round, rng.IntN(1000))}
						if rng.IntN(10) == 0 {
							recs[j].tomb = true
						}
					}
					c := codec
					if c < 0 {
						c = []int{codecNone, codecGzip, codecSnappy, codecLz4, codecZstd}[rng.IntN(5)]
					}
					appendKV(t, l, ref, recs, c, clk.Now().UnixMilli())
				}
				before := readRecords(t, l)
				base, active := activeBytes(t, l)
				st := mustClean(t, l, clk.Now())
				if !st.Cleaned || st.RecordsRemoved == 0 {
					t.Fatalf("round %d: %+v", round, st)
				}
				after := readRecords(t, l)
				checkCleaned(t, after, ref, st.CleanedTo)
				if want := refLatest(ref); !reflect.DeepEqual(latest(after), want) || !reflect.DeepEqual(latest(before), want) {
					t.Fatalf("round %d: latest view changed by cleaning", round)
				}
				if b2, a2 := activeBytes(t, l); b2 != base || !bytes.Equal(a2, active) {
					t.Fatalf("round %d: active segment changed", round)
				}
				if st.DirtyRatioAfter >= st.DirtyRatioBefore {
					t.Fatalf("round %d: dirty ratio %v -> %v", round, st.DirtyRatioBefore, st.DirtyRatioAfter)
				}
				clk.Advance(10 * time.Minute)
			}
			// Tombstones are still there (the retention is an hour from
			// the clean that first kept them); past it they go.
			recs := readRecords(t, l)
			if !hasTombstoneBelow(recs, l.cleaning.ckpt.Load()) {
				t.Fatal("no tombstone kept")
			}
			clk.Advance(2 * time.Hour)
			st := mustClean(t, l, clk.Now())
			if !st.Cleaned {
				t.Fatalf("clean past the delete horizon did nothing: %+v", st)
			}
			recs = readRecords(t, l)
			if hasTombstoneBelow(recs, st.CleanedTo) {
				t.Fatal("tombstone kept past delete.retention.ms")
			}
			if !reflect.DeepEqual(latest(recs), refLatest(ref)) {
				t.Fatal("latest view changed by removing tombstones")
			}
			// The cleaned log survives a restart as it is.
			l.Close()
			l = openLog(t, dir, cfg, WithClock(clk.Now))
			if got := readRecords(t, l); !reflect.DeepEqual(got, recs) {
				t.Fatalf("reopened log differs: %d records, had %d", len(got), len(recs))
			}
		})
	}
}

func hasTombstoneBelow(recs []offRec, off int64) bool {
	for _, r := range recs {
		if r.tomb && r.off < off {
			return true
		}
	}
	return false
}

// TestCleanTombstoneHorizon follows one tombstone through the clock: kept
// by the first clean with a delete horizon, kept while the clock is below
// it, removed by the first clean after it even with nothing dirty.
func TestCleanTombstoneHorizon(t *testing.T) {
	clk := newClock()
	cfg := compactConfig()
	cfg.DeleteRetention = time.Minute
	l := openLog(t, t.TempDir(), cfg, WithClock(clk.Now))
	ref := make(map[int64]kv)
	ts := clk.Now().UnixMilli() - 5000
	appendKV(t, l, ref, []kv{{key: "a", value: "1"}, {key: "b", value: "1"}}, codecNone, ts)
	appendKV(t, l, ref, []kv{{key: "a", tomb: true}}, codecNone, ts+10)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	appendKV(t, l, ref, []kv{{key: "c", value: "1"}}, codecNone, ts+20)

	mustClean(t, l, clk.Now())
	recs := readRecords(t, l)
	if len(recs) != 3 || !recs[1].tomb || !recs[1].horizon || recs[1].ts != ts+10 || recs[1].off != 2 {
		t.Fatalf("after first clean: %+v", recs)
	}
	clk.Advance(59 * time.Second)
	if st := mustClean(t, l, clk.Now()); st.Cleaned {
		t.Fatalf("cleaned before the horizon: %+v", st)
	}
	clk.Advance(time.Second)
	if st := mustClean(t, l, clk.Now()); !st.Cleaned || st.RecordsRemoved != 1 {
		t.Fatalf("at the horizon: %+v", st)
	}
	recs = readRecords(t, l)
	if len(recs) != 2 || recs[0].key != "b" || recs[1].key != "c" {
		t.Fatalf("after the horizon: %+v", recs)
	}
	if st := mustClean(t, l, clk.Now()); st.Cleaned {
		t.Fatalf("nothing left to do, but cleaned: %+v", st)
	}
}

// TestCleanDirtyRatio checks min.cleanable.dirty.ratio gates cleaning.
func TestCleanDirtyRatio(t *testing.T) {
	clk := newClock()
	cfg := compactConfig()
	cfg.MinCleanableDirtyRatio = 0.5
	cfg.SegmentBytes = 400
	l := openLog(t, t.TempDir(), cfg, WithClock(clk.Now))
	ref := make(map[int64]kv)
	for i := 0; i < 40; i++ { // 40 distinct keys: nothing to remove
		appendKV(t, l, ref, []kv{{key: fmt.Sprint("u", i), value: "x"}}, codecNone, 0)
	}
	st := mustClean(t, l, clk.Now())
	if !st.Cleaned || st.DirtyRatioBefore != 1 || st.DirtyRatioAfter != 0 {
		t.Fatalf("first clean: %+v", st)
	}
	// A few more bytes: below half dirty.
	for i := 0; i < 10; i++ {
		appendKV(t, l, ref, []kv{{key: fmt.Sprint("u", i), value: "y"}}, codecNone, 0)
	}
	appendKV(t, l, ref, []kv{{key: "z", value: "y"}}, codecNone, 0)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	st = mustClean(t, l, clk.Now())
	if st.Cleaned || st.DirtyRatioBefore <= 0 || st.DirtyRatioBefore >= 0.5 {
		t.Fatalf("below the ratio: %+v", st)
	}
	if r := l.DirtyRatio(); r != st.DirtyRatioBefore {
		t.Fatalf("DirtyRatio %v, clean saw %v", r, st.DirtyRatioBefore)
	}
	for i := 0; i < 60; i++ {
		appendKV(t, l, ref, []kv{{key: fmt.Sprint("u", i%5), value: "z"}}, codecNone, 0)
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if st = mustClean(t, l, clk.Now()); !st.Cleaned {
		t.Fatalf("above the ratio: %+v", st)
	}
	checkCleaned(t, readRecords(t, l), ref, st.CleanedTo)
}

// TestCleanCompactionLag checks min.compaction.lag.ms holds young
// segments back and max.compaction.lag.ms forces a clean below the ratio,
// rolling the active segment.
func TestCleanCompactionLag(t *testing.T) {
	clk := newClock()
	cfg := compactConfig()
	cfg.MinCompactionLag = time.Hour
	cfg.SegmentBytes = 300
	l := openLog(t, t.TempDir(), cfg, WithClock(clk.Now))
	ref := make(map[int64]kv)
	for i := 0; i < 30; i++ {
		appendKV(t, l, ref, []kv{{key: fmt.Sprint(i % 3), value: fmt.Sprint(i)}}, codecNone, clk.Now().UnixMilli())
	}
	if st := mustClean(t, l, clk.Now()); st.Cleaned {
		t.Fatalf("cleaned records younger than min.compaction.lag.ms: %+v", st)
	}
	clk.Advance(time.Hour + time.Second)
	st := mustClean(t, l, clk.Now())
	if !st.Cleaned || st.RecordsRemoved == 0 {
		t.Fatalf("old enough: %+v", st)
	}
	checkCleaned(t, readRecords(t, l), ref, st.CleanedTo)

	// max.compaction.lag.ms: a high ratio would hold the clean back, but
	// the dirty records are too old. First clean everything up.
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	cfg.MinCompactionLag = 0
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	mustClean(t, l, clk.Now())
	cfg.MinCleanableDirtyRatio = 0.99
	cfg.MaxCompactionLag = time.Minute
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	appendKV(t, l, ref, []kv{{key: "0", value: "late"}}, codecNone, clk.Now().UnixMilli())
	end := l.EndOffset()
	clk.Advance(30 * time.Second)
	if st := mustClean(t, l, clk.Now()); st.Cleaned {
		t.Fatalf("cleaned before max.compaction.lag.ms: %+v", st)
	}
	clk.Advance(31 * time.Second)
	// The active segment is rolled (its record is a minute old) and
	// cleaned though it is a small share of the log.
	st = mustClean(t, l, clk.Now())
	if !st.Cleaned || st.CleanedTo != end || st.DirtyRatioBefore >= 0.99 {
		t.Fatalf("past max.compaction.lag.ms: %+v (end %d)", st, end)
	}
	checkCleaned(t, readRecords(t, l), ref, st.CleanedTo)
}

// TestCleanMergesSegments checks small cleaned segments are merged up to
// segment.bytes.
func TestCleanMergesSegments(t *testing.T) {
	clk := newClock()
	cfg := compactConfig()
	cfg.SegmentBytes = 2000
	cfg.IndexIntervalBytes = 100
	dir := t.TempDir()
	l := openLog(t, dir, cfg, WithClock(clk.Now))
	ref := make(map[int64]kv)
	for i := 0; i < 400; i++ {
		appendKV(t, l, ref, []kv{{key: fmt.Sprint(i % 10), value: fmt.Sprint(i)}}, codecNone, 0)
	}
	// The first clean shrinks segments; the second merges them.
	before := len(segmentFiles(t, dir))
	mustClean(t, l, clk.Now())
	appendKV(t, l, ref, []kv{{key: "x", value: "y"}}, codecNone, 0)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	st := mustClean(t, l, clk.Now())
	after := len(segmentFiles(t, dir))
	if after >= before/2 || st.SegmentsAfter >= st.SegmentsBefore {
		t.Fatalf("%d segments became %d (%+v)", before, after, st)
	}
	l.mu.RLock()
	for _, s := range l.segments {
		if s.pub.size > cfg.SegmentBytes {
			t.Errorf("segment %d has %d bytes", s.base, s.pub.size)
		}
	}
	l.mu.RUnlock()
	checkCleaned(t, readRecords(t, l), ref, st.CleanedTo)
	// Offset lookups still work in merged segments.
	for off := int64(0); off < l.EndOffset(); off += 7 {
		res, err := l.Read(off, 1, l.EndOffset())
		if err != nil || len(res.Records) == 0 {
			t.Fatalf("read %d: %v", off, err)
		}
		h, _ := parseHeader(res.Records)
		if h.lastOffset() < off {
			t.Fatalf("read %d got batch ending %d", off, h.lastOffset())
		}
	}
}

// TestCleanAbortedTransactions checks aborted records go, committed ones
// are compacted, and markers go only after their data and their delete
// horizon.
func TestCleanAbortedTransactions(t *testing.T) {
	clk := newClock()
	cfg := compactConfig()
	cfg.DeleteRetention = time.Minute
	l := openLog(t, t.TempDir(), cfg, WithClock(clk.Now))
	ts := clk.Now().UnixMilli()
	app := func(recs []kv, pid int64, seq int32) {
		t.Helper()
		b := asProducer(keyedBatch(t, recs, codecNone, ts), pid, 0, seq, true)
		if _, err := l.Append(b, 0); err != nil {
			t.Fatal(err)
		}
	}
	app([]kv{{key: "a", value: "committed"}}, 1, 0) // 0
	app([]kv{{key: "a", value: "aborted"}}, 2, 0)   // 1
	app([]kv{{key: "b", value: "aborted"}}, 2, 1)   // 2
	marker(t, l, 1, 0, true, 3)
	marker(t, l, 2, 0, false, 4)
	mustAppend(t, l, keyedBatch(t, []kv{{key: "c", value: "plain"}}, codecNone, ts)) // 5
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, keyedBatch(t, []kv{{key: "d", value: "active"}}, codecNone, ts)) // 6

	type rec struct {
		off     int64
		control bool
		value   string
	}
	view := func() []rec {
		var out []rec
		for _, r := range readRecords(t, l) {
			if r.control {
				r.value = ""
			}
			out = append(out, rec{r.off, r.control, r.value})
		}
		return out
	}
	mustClean(t, l, clk.Now())
	// The aborted records are gone; both markers stay: batches of their
	// transactions were read in this pass.
	want := []rec{{0, false, "committed"}, {3, true, ""}, {4, true, ""}, {5, false, "plain"}, {6, false, "active"}}
	if got := view(); !reflect.DeepEqual(got, want) {
		t.Fatalf("first clean:\n got %+v\nwant %+v", got, want)
	}
	if got := l.AbortedTxns(0, 10); len(got) != 1 || got[0].LastOffset != 4 {
		t.Fatalf("aborted index %+v", got)
	}
	// Make the commit's data go: a newer "a" outside the transaction.
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, keyedBatch(t, []kv{{key: "a", value: "new"}}, codecNone, ts)) // 7
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	mustClean(t, l, clk.Now())
	// The abort marker has nothing left: it gets a horizon. The commit's
	// batch was read (and dropped) in this pass: its marker stays.
	mustClean(t, l, clk.Now()) // nothing dirty: no change
	clk.Advance(2 * time.Minute)
	mustAppend(t, l, keyedBatch(t, []kv{{key: "e", value: "more"}}, codecNone, ts))
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	mustClean(t, l, clk.Now()) // abort marker past its horizon; commit marker gets one
	clk.Advance(2 * time.Minute)
	mustClean(t, l, clk.Now())
	got := view()
	for _, r := range got {
		if r.control || r.value == "aborted" || r.value == "committed" {
			t.Fatalf("left after cleaning: %+v in %+v", r, got)
		}
	}
	if got := l.AbortedTxns(0, 20); len(got) != 0 {
		t.Fatalf("aborted index %+v after its marker went", got)
	}
}

// TestCompactRejectsRecordsWithoutKey: Kafka's INVALID_RECORD.
func TestCompactRejectsRecordsWithoutKey(t *testing.T) {
	l := openLog(t, t.TempDir(), compactConfig())
	for _, codec := range []int{codecNone, codecZstd} {
		b := keyedBatch(t, []kv{{key: "k", value: "v"}, {nokey: true, value: "v"}}, codec, 0)
		if _, err := l.Append(b, 0); !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("codec %d: %v", codec, err)
		}
	}
	if l.EndOffset() != 0 {
		t.Fatal("something was written")
	}
	// A delete-policy log takes them.
	l2 := openLog(t, t.TempDir(), testConfig())
	mustAppend(t, l2, keyedBatch(t, []kv{{nokey: true, value: "v"}}, codecNone, 0))
}

// TestCleanDropsRecordsWithoutKey: records from before the policy became
// compact that have no key are dropped by cleaning.
func TestCleanDropsRecordsWithoutKey(t *testing.T) {
	clk := newClock()
	l := openLog(t, t.TempDir(), testConfig(), WithClock(clk.Now))
	mustAppend(t, l, keyedBatch(t, []kv{{nokey: true, value: "x"}, {key: "k", value: "v"}}, codecNone, 0))
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if err := l.SetConfig(compactConfig()); err != nil {
		t.Fatal(err)
	}
	st := mustClean(t, l, clk.Now())
	recs := readRecords(t, l)
	if st.RecordsRemoved != 1 || len(recs) != 1 || recs[0].key != "k" || recs[0].off != 1 {
		t.Fatalf("%+v %+v", st, recs)
	}
}

// TestCleanRetentionByPolicy: compact alone never deletes by time.
func TestCleanRetentionByPolicy(t *testing.T) {
	cfg := compactConfig()
	cfg.RetentionMs = time.Millisecond
	l := openLog(t, t.TempDir(), cfg)
	mustAppend(t, l, keyedBatch(t, []kv{{key: "k", value: "v"}}, codecNone, 0))
	l.Roll()
	if n, err := l.EnforceRetention(time.Now()); n != 0 || err != nil {
		t.Fatalf("compact: deleted %d, %v", n, err)
	}
	cfg.CleanupPolicy = CleanupCompact | CleanupDelete
	l.SetConfig(cfg)
	if n, err := l.EnforceRetention(time.Now()); n != 1 || err != nil {
		t.Fatalf("compact,delete: deleted %d, %v", n, err)
	}
}

// TestCleanCrashDuringSwap simulates a crash after every step of the swap
// and checks the reopened log holds either the old segments or the new
// ones, whole, with no temporary file left.
func TestCleanCrashDuringSwap(t *testing.T) {
	steps := []string{"staged", "index-renamed", "committed", "old-removed", "index-final", "done"}
	for _, step := range steps {
		for _, nth := range []int{1, 2} {
			t.Run(fmt.Sprint(step, nth), func(t *testing.T) {
				clk := newClock()
				cfg := compactConfig()
				cfg.SegmentBytes = 600
				dir := t.TempDir()
				l, err := Open(dir, cfg, WithClock(clk.Now))
				if err != nil {
					t.Fatal(err)
				}
				ref := make(map[int64]kv)
				rng := rand.New(rand.NewPCG(1, uint64(nth)))
				for i := 0; i < 120; i++ {
					appendKV(t, l, ref, []kv{{key: fmt.Sprint(rng.IntN(8)), value: fmt.Sprint(i), tomb: i%17 == 0}}, codecLz4, 0)
				}
				if err := l.WaitFlushed(l.EndOffset()); err != nil {
					t.Fatal(err)
				}
				old := readRecords(t, l)
				hits := 0
				l.cleaning.hook = func(s string) bool {
					if s == step {
						hits++
						return hits == nth
					}
					return false
				}
				_, err = l.Clean(clk.Now())
				crashed := errors.Is(err, errSimulatedCrash)
				if err != nil && !crashed {
					t.Fatal(err)
				}
				l.Close()

				l = openLog(t, dir, cfg, WithClock(clk.Now))
				for _, pat := range []string{"*.cleaned", "*.swap"} {
					if m, _ := filepath.Glob(filepath.Join(dir, pat)); len(m) > 0 {
						t.Fatalf("left %v", m)
					}
				}
				got := readRecords(t, l)
				if !reflect.DeepEqual(latest(got), latest(old)) {
					t.Fatal("latest view changed")
				}
				checkCleaned(t, got, ref, 0)
				// Each group is old or new: a key appears at most once in
				// the records of any one segment that was cleaned.
				if len(got) >= len(old) && crashed && step != "staged" && step != "index-renamed" && nth == 1 {
					t.Fatalf("committed swap rolled back: %d records, had %d", len(got), len(old))
				}
				if (step == "staged" || step == "index-renamed") && nth == 1 && len(got) != len(old) {
					t.Fatalf("uncommitted swap kept: %d records, had %d", len(got), len(old))
				}
				// A full clean afterwards finishes the job.
				st := mustClean(t, l, clk.Now())
				checkCleaned(t, readRecords(t, l), ref, st.CleanedTo)
			})
		}
	}
}

// TestCleanWithConcurrentReaders reads the log continuously while it is
// appended to and cleaned: every read returns whole, valid batches whose
// records are those appended at their offsets.
func TestCleanWithConcurrentReaders(t *testing.T) {
	clk := newClock()
	cfg := compactConfig()
	cfg.SegmentBytes = 800
	l := openLog(t, t.TempDir(), cfg, WithClock(clk.Now))
	// The record at offset o has key o%13 and value o.
	appendSeq := func(n int) {
		for i := 0; i < n; i++ {
			o := l.EndOffset()
			mustAppend(t, l, keyedBatch(t, []kv{{key: fmt.Sprint(o % 13), value: fmt.Sprint(o)}}, codecNone, 0))
		}
	}
	appendSeq(300)
	stop := make(chan struct{})
	done := make(chan error, 2)
	reader := func() error {
		for {
			select {
			case <-stop:
				return nil
			default:
			}
			end := l.EndOffset()
			for off := l.StartOffset(); off < end; {
				res, err := l.Read(off, 300, end)
				if err != nil {
					return err
				}
				last := int64(-1)
				for p := int64(0); p < int64(len(res.Records)); {
					h, err := parseHeader(res.Records[p:])
					if err != nil || !crcOK(res.Records[p:p+h.size]) {
						return fmt.Errorf("bad batch at %d: %v", off, err)
					}
					recs, err := batchRecordList(res.Records[p:p+h.size], &h, minReadLimit, nil)
					if err != nil {
						return err
					}
					for _, rc := range recs {
						o := h.baseOffset + rc.offDelta
						if _, v := recordKV(t, rc); string(rc.key) != fmt.Sprint(o%13) || v != fmt.Sprint(o) {
							return fmt.Errorf("offset %d: %q=%q", o, rc.key, v)
						}
					}
					last = h.lastOffset()
					p += h.size
				}
				if last < 0 {
					break
				}
				off = last + 1
			}
		}
	}
	for r := 0; r < 2; r++ {
		go func() { done <- reader() }()
	}
	for i := 0; i < 5; i++ {
		appendSeq(60)
		mustClean(t, l, clk.Now())
	}
	close(stop)
	for r := 0; r < 2; r++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
