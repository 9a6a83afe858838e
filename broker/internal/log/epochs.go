package log

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// The leader epoch history: for every partition leader epoch the log has
// been written at (or led at), the first offset at that epoch. It answers
// OffsetForLeaderEpoch as Kafka's LeaderEpochFileCache does, and lives in
// the leader-epoch-checkpoint file, in Kafka's text format:
//
//	0                    format version
//	2                    number of entries
//	0 0                  epoch, start offset; epochs and offsets ascending
//	3 1200
//
// The file is rewritten (temp file, fsync, rename, directory fsync) before
// the first batch of a new epoch is written, so every epoch a batch on
// disk carries has its entry: a crash can leave an entry with no batch
// yet, never a batch with no entry. Epochs change rarely (a leader
// change), so the write costs nothing on the append path. Recovery drops
// entries at or past the recovered log end (their batches were torn off)
// and adds the epochs of the batches it scans in the newest segment; a log
// with no checkpoint (written before there was one) or an unreadable one
// gets its history rebuilt from every batch header once.
//
// Entries before the log start offset are clamped as Kafka's
// truncateFromStart does (the last entry at or before the start moves to
// it, earlier ones are dropped), when read rather than by rewriting the
// file: retention and DeleteRecords do not touch it.

// epochFile names the leader epoch checkpoint, as Kafka names it.
const epochFile = "leader-epoch-checkpoint"

// EpochEntry is a leader epoch and the first offset written at it.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// AssignEpoch records epoch as starting at the log end, when it is above
// every epoch the log has seen, as a partition does when it becomes
// leader at that epoch: from then OffsetForLeaderEpoch answers the log end
// offset for it, even before anything is written at it.
func (l *Log) AssignEpoch(epoch int32) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	if err := l.broken(); err != nil {
		return err
	}
	return l.assignEpochLocked(epoch)
}

// assignEpochLocked adds epoch at the log end when it is newer than the
// latest, persisting the history first. Entries starting at the log end
// (epochs nothing was written at) give way to it. A lower epoch is
// ignored: on one node the leader epoch never goes back, and Kafka only
// warns.
// REQUIRES: l.appendMu held.
func (l *Log) assignEpochLocked(epoch int32) error {
	if epoch < 0 {
		return nil
	}
	if n := len(l.epochs); n > 0 && l.epochs[n-1].Epoch >= epoch {
		return nil
	}
	end := l.end.Load()
	next := clampEpochs(l.epochs, l.start.Load())
	for len(next) > 0 && next[len(next)-1].StartOffset >= end {
		next = next[:len(next)-1]
	}
	next = append(next, EpochEntry{Epoch: epoch, StartOffset: end})
	if err := l.writeEpochs(next); err != nil {
		return err
	}
	l.mu.Lock()
	l.epochs = next
	l.mu.Unlock()
	return nil
}

// clampEpochs returns a copy of entries as of log start offset start: the
// last entry at or before start moved to start, the ones before it gone.
func clampEpochs(entries []EpochEntry, start int64) []EpochEntry {
	i := 0
	for i+1 < len(entries) && entries[i+1].StartOffset <= start {
		i++
	}
	out := slices.Clone(entries[i:])
	if len(out) > 0 && out[0].StartOffset < start {
		out[0].StartOffset = start
	}
	return out
}

// Epochs returns the leader epoch history as of the log start offset.
func (l *Log) Epochs() []EpochEntry {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return clampEpochs(l.epochs, l.start.Load())
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch for epoch, as Kafka's
// LeaderEpochFileCache.endOffsetFor: for the latest epoch, the log end
// offset; for an older one, the largest epoch at or below it and the
// start offset of the first epoch above it (where its history ends);
// for an epoch below every known one, itself and the first known epoch's
// start. It returns -1, -1 (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET) for
// epoch -1, an epoch above every known one, or an empty history.
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	if epoch < 0 {
		return -1, -1
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	entries := clampEpochs(l.epochs, l.start.Load())
	n := len(entries)
	if n == 0 {
		return -1, -1
	}
	if entries[n-1].Epoch == epoch {
		return epoch, l.end.Load()
	}
	higher, _ := slices.BinarySearchFunc(entries, epoch+1, func(e EpochEntry, t int32) int {
		return int(e.Epoch) - int(t)
	})
	switch higher {
	case n:
		return -1, -1
	case 0:
		return epoch, entries[0].StartOffset
	}
	return entries[higher-1].Epoch, entries[higher].StartOffset
}

// writeEpochs checkpoints entries atomically.
func (l *Log) writeEpochs(entries []EpochEntry) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(entries))
	for _, e := range entries {
		fmt.Fprintf(&b, "%d %d\n", e.Epoch, e.StartOffset)
	}
	if err := writeFileAtomic(filepath.Join(l.dir, epochFile), b.Bytes()); err != nil {
		return fmt.Errorf("log: checkpoint leader epochs: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		return fmt.Errorf("log: checkpoint leader epochs: %w", err)
	}
	return nil
}

// errNoEpochFile reports a log without a leader epoch checkpoint.
var errNoEpochFile = errors.New("no leader epoch checkpoint")

// readEpochs reads the checkpoint. It fails with errNoEpochFile when
// there is none, and with a description of the problem when it is not
// well formed (entries must ascend in epoch and start offset).
func (l *Log) readEpochs() ([]EpochEntry, error) {
	raw, err := os.ReadFile(filepath.Join(l.dir, epochFile))
	if os.IsNotExist(err) {
		return nil, errNoEpochFile
	}
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	line := func() (string, error) {
		if !sc.Scan() {
			return "", io.ErrUnexpectedEOF
		}
		return sc.Text(), nil
	}
	num := func(s string, bits int) (int64, error) { return strconv.ParseInt(s, 10, bits) }
	v, err := line()
	if err != nil {
		return nil, err
	}
	if v != "0" {
		return nil, fmt.Errorf("version %q", v)
	}
	v, err = line()
	if err != nil {
		return nil, err
	}
	count, err := num(v, 32)
	if err != nil || count < 0 {
		return nil, fmt.Errorf("entry count %q", v)
	}
	entries := make([]EpochEntry, 0, min(count, 1024))
	for range count {
		v, err := line()
		if err != nil {
			return nil, err
		}
		var es, offs string
		if _, err := fmt.Sscan(v, &es, &offs); err != nil {
			return nil, fmt.Errorf("entry %q", v)
		}
		epoch, err1 := num(es, 32)
		off, err2 := num(offs, 64)
		if err1 != nil || err2 != nil || epoch < 0 || off < 0 {
			return nil, fmt.Errorf("entry %q", v)
		}
		e := EpochEntry{Epoch: int32(epoch), StartOffset: off}
		if n := len(entries); n > 0 && (e.Epoch <= entries[n-1].Epoch || e.StartOffset < entries[n-1].StartOffset) {
			return nil, fmt.Errorf("entry %q out of order", v)
		}
		entries = append(entries, e)
	}
	if sc.Scan() && sc.Text() != "" {
		return nil, fmt.Errorf("trailing %q", sc.Text())
	}
	return entries, nil
}

// noteEpoch folds a recovered batch's epoch into the history.
// REQUIRES: called by recover, before the log is shared.
func (l *Log) noteEpoch(h *batchHeader) {
	if h.leaderEpoch < 0 {
		return
	}
	if n := len(l.epochs); n > 0 && l.epochs[n-1].Epoch >= h.leaderEpoch {
		return
	}
	l.epochs = append(l.epochs, EpochEntry{Epoch: h.leaderEpoch, StartOffset: h.baseOffset})
}

// loadEpochs reads the checkpoint at the start of recovery and returns
// what it held; on failure (ok false) the history is rebuilt from the log
// by finishEpochs.
// REQUIRES: called by recover, before the log is shared.
func (l *Log) loadEpochs() (ckpt []EpochEntry, ok bool) {
	os.Remove(filepath.Join(l.dir, epochFile+".tmp"))
	entries, err := l.readEpochs()
	if err != nil {
		if !errors.Is(err, errNoEpochFile) {
			l.logger.Warn("rebuilding leader epoch history from the log", "dir", l.dir, "reason", err)
		}
		return nil, false
	}
	l.epochs = slices.Clone(entries)
	return entries, true
}

// finishEpochs completes the history once recovery knows the log end:
// it drops entries at or past end, rebuilds the history from every batch
// header when the checkpoint could not be read (loaded false), and
// rewrites the checkpoint if the history differs from what it held
// (ckpt).
// REQUIRES: called by recover, before the log is shared.
func (l *Log) finishEpochs(ckpt []EpochEntry, loaded bool, end int64) error {
	if !loaded {
		l.epochs = nil
		for _, s := range l.segments {
			sc := newScanner(s.f, 0, s.w.size)
			for {
				h, _, err := sc.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return fmt.Errorf("log: rebuild leader epochs, segment %d: %w", s.base, err)
				}
				l.noteEpoch(&h)
			}
		}
	}
	for len(l.epochs) > 0 && l.epochs[len(l.epochs)-1].StartOffset >= end {
		l.epochs = l.epochs[:len(l.epochs)-1]
	}
	if loaded && slices.Equal(ckpt, l.epochs) {
		return nil
	}
	if !loaded && len(l.epochs) == 0 {
		return nil // nothing to checkpoint; the first append writes it
	}
	return l.writeEpochs(l.epochs)
}
