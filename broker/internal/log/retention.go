package log

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// startOffsetFile is the checkpoint of the log start offset, which may lie
// inside the first segment (after SetStartOffset) and so cannot be read
// from segment names alone.
const startOffsetFile = "log-start-offset"

// EnforceRetention deletes whole segments from the oldest, as Kafka does:
// those whose largest timestamp is older than now minus retention.ms, then
// those the log can lose and stay at least retention.bytes large, and those
// wholly below the log start offset (by time and size only when
// cleanup.policy includes delete). The active segment is never deleted;
// when it too has expired by time and is non-empty it is rolled first so it
// can go, leaving an empty active segment. The log start offset moves to
// the first remaining segment. It returns how many segments were deleted.
func (l *Log) EnforceRetention(now time.Time) (int, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return 0, ErrClosed
	}
	cfg := l.cfg.Load()
	segs := l.segments
	n := 0 // segments to delete, from the oldest
	if cfg.RetentionMs >= 0 && cfg.CleanupPolicy.Delete() {
		limit := now.UnixMilli() - cfg.RetentionMs.Milliseconds()
		for n < len(segs) && segs[n].w.size > 0 && segs[n].largestTime() < limit {
			n++
		}
		if n == len(segs) {
			// Everything, the active segment included, has expired.
			if err := l.broken(); err != nil {
				return 0, err
			}
			if err := l.rollLocked(); err != nil {
				return 0, err
			}
			segs = l.segments
		}
	}
	if cfg.RetentionBytes >= 0 && cfg.CleanupPolicy.Delete() {
		excess := l.size.Load() - cfg.RetentionBytes
		for _, s := range segs[:n] {
			excess -= s.w.size
		}
		for n < len(segs)-1 && excess-segs[n].w.size >= 0 {
			excess -= segs[n].w.size
			n++
		}
	}
	start := l.start.Load()
	for n < len(segs)-1 && segs[n+1].base <= start {
		n++
	}
	n = min(n, len(segs)-1)
	return n, l.deleteOldestLocked(n)
}

// SetStartOffset moves the log start offset forward to off (DeleteRecords),
// persists it, and deletes the segments wholly below it. Moving it
// backwards is a no-op; past the log end is ErrOffsetOutOfRange.
func (l *Log) SetStartOffset(off int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	if off <= l.start.Load() {
		return nil
	}
	if end := l.end.Load(); off > end {
		return fmt.Errorf("%w: start offset %d past the log end %d", ErrOffsetOutOfRange, off, end)
	}
	if err := l.writeStartOffset(off); err != nil {
		return err
	}
	l.mu.Lock()
	l.start.Store(off)
	l.mu.Unlock()
	n := 0
	for n < len(l.segments)-1 && l.segments[n+1].base <= off {
		n++
	}
	return l.deleteOldestLocked(n)
}

// deleteOldestLocked removes the n oldest segments (never the active one)
// and moves the log start offset to the first that remains. The new start
// is checkpointed before any file goes. Readers of a deleted segment see
// its file closed and look again.
// REQUIRES: l.appendMu held.
func (l *Log) deleteOldestLocked(n int) error {
	if n <= 0 {
		return nil
	}
	victims := slices.Clone(l.segments[:n])
	start := max(l.start.Load(), l.segments[n].base)
	if start != l.start.Load() {
		if err := l.writeStartOffset(start); err != nil {
			return err
		}
	}
	var freed int64
	for _, s := range victims {
		freed += s.w.size
	}
	l.mu.Lock()
	l.segments = slices.Clone(l.segments[n:])
	l.start.Store(start)
	l.size.Add(-freed)
	for _, s := range victims {
		s.deleted.Store(true)
	}
	l.mu.Unlock()

	var errs []error
	for _, s := range victims {
		s.dropCache()
		s.f.Close()
		if err := s.remove(); err != nil {
			errs = append(errs, err)
		}
		l.logger.Info("deleted segment", "dir", l.dir, "base", s.base, "bytes", s.w.size)
	}
	// Snapshots before the first segment can no longer be replayed from.
	first := l.segments[0].base
	l.removeSnapshots(func(off int64) bool { return off < first })
	if err := syncDir(l.dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("log: delete segments: %w", err)
	}
	return nil
}

// writeStartOffset checkpoints the log start offset atomically: temp file,
// fsync, rename, directory fsync.
func (l *Log) writeStartOffset(off int64) error {
	path := filepath.Join(l.dir, startOffsetFile)
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, []byte(strconv.FormatInt(off, 10)+"\n")); err != nil {
		return fmt.Errorf("log: checkpoint start offset: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("log: checkpoint start offset: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		return fmt.Errorf("log: checkpoint start offset: %w", err)
	}
	return nil
}

// readStartOffset returns the checkpointed log start offset, or -1 when
// there is none or it is unreadable.
func (l *Log) readStartOffset() int64 {
	raw, err := os.ReadFile(filepath.Join(l.dir, startOffsetFile))
	if err != nil {
		if !os.IsNotExist(err) {
			l.logger.Warn("read start offset checkpoint", "dir", l.dir, "err", err)
		}
		return -1
	}
	off, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil || off < 0 {
		l.logger.Warn("ignoring bad start offset checkpoint", "dir", l.dir, "content", string(raw))
		return -1
	}
	return off
}
