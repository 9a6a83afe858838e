package log

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// appendAtEpoch appends one batch of n records at leader epoch epoch.
func appendAtEpoch(t *testing.T, l *Log, epoch int32, n int) {
	t.Helper()
	if _, err := l.Append(batches(t, 1, n, 10, 0), epoch); err != nil {
		t.Fatal(err)
	}
}

func checkEpochs(t *testing.T, l *Log, want ...EpochEntry) {
	t.Helper()
	if got := l.Epochs(); !slices.Equal(got, want) {
		t.Fatalf("epochs %v, want %v", got, want)
	}
}

// checkEndOffsets checks EndOffsetForEpoch for each requested epoch:
// want[epoch] is the (epoch, end offset) answer.
func checkEndOffsets(t *testing.T, l *Log, want map[int32][2]int64) {
	t.Helper()
	for req, w := range want {
		e, off := l.EndOffsetForEpoch(req)
		if int64(e) != w[0] || off != w[1] {
			t.Errorf("end offset for epoch %d: epoch %d offset %d, want epoch %d offset %d", req, e, off, w[0], w[1])
		}
	}
}

// The history follows Kafka's LeaderEpochFileCache: the latest epoch ends
// at the log end, an older one where the next begins, an unknown newer one
// is undefined; an epoch assigned with nothing written gives way to the
// next; it survives a restart, drops an entry nothing was written at, and
// is clamped to the log start offset.
func TestEpochHistory(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	checkEpochs(t, l)
	checkEndOffsets(t, l, map[int32][2]int64{-1: {-1, -1}, 0: {-1, -1}})

	if err := l.AssignEpoch(0); err != nil {
		t.Fatal(err)
	}
	checkEpochs(t, l, EpochEntry{0, 0})
	checkEndOffsets(t, l, map[int32][2]int64{0: {0, 0}, 1: {-1, -1}})

	appendAtEpoch(t, l, 0, 5) // [0, 5)
	if err := l.AssignEpoch(2); err != nil {
		t.Fatal(err)
	}
	appendAtEpoch(t, l, 2, 3) // [5, 8)
	appendAtEpoch(t, l, 4, 2) // [8, 10): a batch at a new epoch records it
	appendAtEpoch(t, l, 3, 1) // [10, 11): an older epoch changes nothing
	want := []EpochEntry{{0, 0}, {2, 5}, {4, 8}}
	answers := map[int32][2]int64{
		-1: {-1, -1},
		0:  {0, 5},
		1:  {0, 5},
		2:  {2, 8},
		3:  {2, 8},
		4:  {4, 11},
		5:  {-1, -1},
	}
	checkEpochs(t, l, want...)
	checkEndOffsets(t, l, answers)

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	checkEpochs(t, l, want...)
	checkEndOffsets(t, l, answers)

	// Epoch 6 is assigned but nothing is written at it before epoch 7.
	for _, e := range []int32{6, 7} {
		if err := l.AssignEpoch(e); err != nil {
			t.Fatal(err)
		}
	}
	checkEpochs(t, l, EpochEntry{0, 0}, EpochEntry{2, 5}, EpochEntry{4, 8}, EpochEntry{7, 11})
	checkEndOffsets(t, l, map[int32][2]int64{6: {4, 11}, 7: {7, 11}, 8: {-1, -1}})

	// Reopened, an entry at the log end has no batch behind it and goes,
	// as Kafka's truncateFromEnd drops it; the partition assigns its epoch
	// again when it leads.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	checkEpochs(t, l, want...)
	checkEndOffsets(t, l, map[int32][2]int64{7: {-1, -1}, 4: {4, 11}})

	if err := l.SetStartOffset(6); err != nil {
		t.Fatal(err)
	}
	checkEpochs(t, l, EpochEntry{2, 6}, EpochEntry{4, 8})
	checkEndOffsets(t, l, map[int32][2]int64{0: {0, 6}, 1: {1, 6}, 2: {2, 8}, 4: {4, 11}})
}

// A log with no checkpoint (written before there was one) or a corrupt
// one has its history rebuilt from its batches, across segments; a
// checkpoint that misses the epochs of the newest segment gains them.
func TestEpochHistoryRecovery(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	appendAtEpoch(t, l, 0, 4) // [0, 4)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	appendAtEpoch(t, l, 0, 2) // [4, 6)
	appendAtEpoch(t, l, 1, 3) // [6, 9)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	appendAtEpoch(t, l, 3, 2) // [9, 11)
	appendAtEpoch(t, l, 5, 1) // [11, 12)
	want := []EpochEntry{{0, 0}, {1, 6}, {3, 9}, {5, 11}}
	checkEpochs(t, l, want...)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, dir)); n != 3 {
		t.Fatalf("%d segments, want 3", n)
	}
	ckpt := filepath.Join(dir, epochFile)
	reopen := func(name string, want ...EpochEntry) {
		t.Helper()
		l, err := Open(dir, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		checkEpochs(t, l, want...)
		checkEndOffsets(t, l, map[int32][2]int64{0: {0, 6}, 2: {1, 9}, 5: {5, 12}})
		if _, err := os.Stat(ckpt); err != nil {
			t.Fatalf("%s: checkpoint not rewritten: %v", name, err)
		}
	}

	if err := os.Remove(ckpt); err != nil {
		t.Fatal(err)
	}
	reopen("no checkpoint", want...)

	if err := os.WriteFile(ckpt, []byte("0\n3\n0 0\n1 x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reopen("corrupt checkpoint", want...)

	if err := os.WriteFile(ckpt, []byte("0\n2\n0 0\n1 6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reopen("stale checkpoint", want...)
	raw, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(raw); got != "0\n4\n0 0\n1 6\n3 9\n5 11\n" {
		t.Fatalf("checkpoint %q", got)
	}
}

// A batch at a new epoch torn off by a crash takes its entry with it.
func TestEpochHistoryTornTail(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	appendAtEpoch(t, l, 0, 5)
	appendAtEpoch(t, l, 2, 3)
	checkEpochs(t, l, EpochEntry{0, 0}, EpochEntry{2, 5})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	seg := segmentFiles(t, dir)[0]
	if err := os.Truncate(seg, fileSize(t, seg)-3); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, testConfig())
	if l.EndOffset() != 5 {
		t.Fatalf("end offset %d after the torn tail, want 5", l.EndOffset())
	}
	checkEpochs(t, l, EpochEntry{0, 0})
	checkEndOffsets(t, l, map[int32][2]int64{0: {0, 5}, 2: {-1, -1}})
}
