package log

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// writeSegments appends count batches to a fresh log in dir and closes it,
// returning the batch sizes.
func writeSegments(t *testing.T, dir string, cfg Config, count int) []int {
	t.Helper()
	l := openLog(t, dir, cfg)
	var sizes []int
	for i := 0; i < count; i++ {
		b := makeBatch(t, batchSpec{n: 1 + i%3, value: 20 + i%40, firstTs: int64(1000 + i)})
		sizes = append(sizes, len(b))
		mustAppend(t, l, b)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return sizes
}

func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// Cutting the newest segment anywhere, or following it with garbage,
// recovers exactly the whole batches before the cut.
func TestRecoverTornTail(t *testing.T) {
	cfg := testConfig()
	cfg.IndexIntervalBytes = 100
	src := t.TempDir()
	sizes := writeSegments(t, src, cfg, 30)
	seg := filepath.Join(src, segmentName(0)+logSuffix)
	full, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Offsets at each batch boundary.
	var bounds []int
	var ends []int64
	pos, off := 0, int64(0)
	for i, s := range sizes {
		pos += s
		off += int64(1 + i%3)
		bounds = append(bounds, pos)
		ends = append(ends, off)
	}
	// The whole batches data still holds (garbage can happen to complete
	// a cut batch: its last byte is often a zero header count).
	wantEnd := func(data []byte) (int64, int) {
		var end int64
		valid := 0
		for i, b := range bounds {
			if b <= len(data) && bytes.Equal(data[:b], full[:b]) {
				end, valid = ends[i], b
			}
		}
		return end, valid
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for cut := 0; cut <= len(full); cut += 1 + rng.IntN(37) {
		for _, garbage := range [][]byte{nil, {0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 200, 1, 2, 3, 4, 2, 9, 9}, bytes.Repeat([]byte{0xff}, 100)} {
			dir := copyDir(t, src)
			data := append(bytes.Clone(full[:cut]), garbage...)
			if err := os.WriteFile(filepath.Join(dir, segmentName(0)+logSuffix), data, 0o644); err != nil {
				t.Fatal(err)
			}
			l, err := Open(dir, cfg)
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			end, valid := wantEnd(data)
			if l.EndOffset() != end || l.Size() != int64(valid) {
				t.Fatalf("cut %d garbage %d: end %d size %d, want %d %d", cut, len(garbage), l.EndOffset(), l.Size(), end, valid)
			}
			checkInvariants(t, l)
			readAll(t, l, 1)
			if res := mustAppend(t, l, makeBatch(t, batchSpec{n: 2})); res.BaseOffset != end {
				t.Fatalf("cut %d: append at %d, want %d", cut, res.BaseOffset, end)
			}
			l.Close()
		}
	}
}

// A flipped byte inside a batch of the newest segment cuts the log there.
func TestRecoverCRCMismatch(t *testing.T) {
	cfg := testConfig()
	dir := t.TempDir()
	sizes := writeSegments(t, dir, cfg, 5)
	seg := filepath.Join(dir, segmentName(0)+logSuffix)
	raw, _ := os.ReadFile(seg)
	raw[sizes[0]+sizes[1]+70] ^= 0x40 // inside the third batch's records
	os.WriteFile(seg, raw, 0o644)
	l := openLog(t, dir, cfg)
	if l.EndOffset() != 3 || l.Size() != int64(sizes[0]+sizes[1]) {
		t.Fatalf("end %d size %d", l.EndOffset(), l.Size())
	}
}

// Older segments with missing, truncated or nonsense index files are
// rebuilt; reads and timestamp lookups agree with a clean open.
func TestRecoverOldSegmentIndexes(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 2000
	cfg.IndexIntervalBytes = 200
	src := t.TempDir()
	writeSegments(t, src, cfg, 80)
	clean := openLog(t, src, cfg)
	wantHs := readAll(t, clean, 1<<20)
	wantOff, wantTs, _ := clean.MaxTimestamp()
	wantFound, _, _, _ := clean.OffsetForTimestamp(1040)
	if len(clean.segments) < 4 {
		t.Fatalf("%d segments", len(clean.segments))
	}
	clean.Close()

	for name, damage := range map[string]func(dir string, base int64){
		"missing": func(dir string, base int64) {
			os.Remove(filepath.Join(dir, segmentName(base)+indexSuffix))
			os.Remove(filepath.Join(dir, segmentName(base)+timeIndexSuffix))
		},
		"odd size": func(dir string, base int64) {
			p := filepath.Join(dir, segmentName(base)+indexSuffix)
			raw, _ := os.ReadFile(p)
			os.WriteFile(p, raw[:len(raw)-3], 0o644)
		},
		"shifted position": func(dir string, base int64) {
			p := filepath.Join(dir, segmentName(base)+indexSuffix)
			raw, _ := os.ReadFile(p)
			raw[len(raw)-1] += 3
			os.WriteFile(p, raw, 0o644)
		},
		"garbage time index": func(dir string, base int64) {
			os.WriteFile(filepath.Join(dir, segmentName(base)+timeIndexSuffix), bytes.Repeat([]byte{7}, 24), 0o644)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := copyDir(t, src)
			l0 := openLog(t, dir, cfg)
			bases := make([]int64, 0, len(l0.segments))
			for _, s := range l0.segments {
				bases = append(bases, s.base)
			}
			l0.Close()
			for _, b := range bases[:len(bases)-1] {
				damage(dir, b)
			}
			l := openLog(t, dir, cfg)
			hs := readAll(t, l, 1<<20)
			if len(hs) != len(wantHs) {
				t.Fatalf("%d batches, want %d", len(hs), len(wantHs))
			}
			if off, ts, _ := l.MaxTimestamp(); off != wantOff || ts != wantTs {
				t.Fatalf("max timestamp %d@%d, want %d@%d", ts, off, wantTs, wantOff)
			}
			if found, _, _, _ := l.OffsetForTimestamp(1040); found != wantFound {
				t.Fatalf("offset for timestamp %d, want %d", found, wantFound)
			}
		})
	}
}

func TestRecoverIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"partition.metadata":              "abc\n",
		"leader-epoch-checkpoint":         "0\n0\n",
		"12345.log":                       "not a segment name",
		"0000000000000000000x.log":        "not digits",
		"00000000000000000099.index":      "orphan index",
		"00000000000000000000.log.delete": "junk",
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644)
	}
	os.Mkdir(filepath.Join(dir, "00000000000000000005.log"), 0o755)
	l := openLog(t, dir, testConfig())
	if l.EndOffset() != 0 || l.StartOffset() != 0 {
		t.Fatalf("start %d end %d", l.StartOffset(), l.EndOffset())
	}
	mustAppend(t, l, makeBatch(t, batchSpec{n: 3}))
	if raw, _ := os.ReadFile(filepath.Join(dir, "partition.metadata")); string(raw) != "abc\n" {
		t.Fatal("foreign file changed")
	}
}

// An empty segment file as the newest segment (a crash right after a
// roll) is an empty active segment.
func TestRecoverEmptyNewest(t *testing.T) {
	cfg := testConfig()
	dir := t.TempDir()
	writeSegments(t, dir, cfg, 3) // offsets 0-5
	os.WriteFile(filepath.Join(dir, segmentName(6)+logSuffix), nil, 0o644)
	l := openLog(t, dir, cfg)
	if l.EndOffset() != 6 || len(l.segments) != 2 {
		t.Fatalf("end %d, %d segments", l.EndOffset(), len(l.segments))
	}
	if res := mustAppend(t, l, makeBatch(t, batchSpec{n: 1})); res.BaseOffset != 6 {
		t.Fatalf("%+v", res)
	}
	readAll(t, l, 1)
}
