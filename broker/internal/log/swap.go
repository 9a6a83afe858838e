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

// The crash-safe swap of cleaned segments.
//
// A group of old segments [B, E) is replaced by one cleaned segment based
// at B. Its files are written under temporary names and renamed in an
// order that makes the rename of B.log.cleaned to B.log.swap the commit
// point:
//
//	1. write B.log.cleaned, B.index.cleaned, B.timeindex.cleaned,
//	   B.txnindex.cleaned and B.cleanrange.cleaned (holding E); fsync each
//	2. rename the index and range files to .swap; fsync the directory
//	3. rename B.log.cleaned to B.log.swap; fsync the directory  (commit)
//	4. delete the files of every old segment based in [B, E)
//	5. rename the index .swap files, then B.log.swap, to their final
//	   names; delete B.cleanrange.swap; fsync the directory
//
// Open (finishSwaps) makes any interrupted swap whole before it reads a
// segment: .cleaned files, and .swap files without a B.log.swap, belong
// to a swap that never committed and are deleted, leaving the old
// segments; a B.log.swap means the new segment is complete, so steps 4
// and 5 are redone. Either way the log holds the old segments or the new
// one, never a mix.

const (
	cleanedSuffix    = ".cleaned"
	swapSuffix       = ".swap"
	cleanRangeSuffix = ".cleanrange"
)

// swapIndexSuffixes are the files of a segment besides its .log, renamed
// before it.
var swapIndexSuffixes = []string{indexSuffix, timeIndexSuffix, txnIndexSuffix, cleanRangeSuffix}

// stagedSegment is a cleaned segment being written under temporary names.
type stagedSegment struct {
	dir  string
	base int64
	end  int64 // the replaced segments' offsets lie in [base, end)
	old  []*segment
	f    *os.File // B.log.cleaned, then B.log.swap, then B.log
	m    segMeta
	// modTime is the newest old segment's modification time (ms), kept
	// so that retention ages the merged segment as it would have the old.
	modTime int64
}

func (st *stagedSegment) path(suffix string) string {
	return filepath.Join(st.dir, segmentName(st.base)+suffix)
}

// createStaged opens B.log.cleaned for a group.
func (l *Log) createStaged(g []cleanSeg) (*stagedSegment, error) {
	st := &stagedSegment{dir: l.dir, base: g[0].s.base, end: g[len(g)-1].end, m: newSegMeta(g[0].s.base)}
	for i := range g {
		st.old = append(st.old, g[i].s)
	}
	f, err := os.OpenFile(st.path(logSuffix+cleanedSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log: create cleaned segment: %w", err)
	}
	st.f = f
	return st, nil
}

// discard removes an uncommitted staged segment.
func (st *stagedSegment) discard() {
	st.f.Close()
	for _, suf := range append([]string{logSuffix}, swapIndexSuffixes...) {
		os.Remove(st.path(suf + cleanedSuffix))
		os.Remove(st.path(suf + swapSuffix))
	}
}

// stage finishes step 1: the .log is synced and the other files written.
func (st *stagedSegment) stage() error {
	if err := st.f.Sync(); err != nil {
		return fmt.Errorf("log: sync cleaned segment: %w", err)
	}
	files := [][]byte{
		encodeIndex(st.m.index),
		encodeTimeIndex(st.m.timeIndex),
		encodeTxnIndex(st.m.aborted),
		[]byte(strconv.FormatInt(st.end, 10) + "\n"),
	}
	for i, suf := range swapIndexSuffixes {
		if err := writeFileSync(st.path(suf+cleanedSuffix), files[i]); err != nil {
			return fmt.Errorf("log: write cleaned segment: %w", err)
		}
	}
	return nil
}

// errSimulatedCrash is returned when a test hook stops a swap.
var errSimulatedCrash = errors.New("log: simulated crash")

// swapIn replaces the staged segment's old segments with it, on disk
// (steps 2 to 5) and for readers, holding the append lock. If the old
// segments are no longer all in the log (retention or DeleteRecords took
// some), nothing changes and the staged files are removed. A failure
// after the commit point makes the log's write error sticky: the files
// are made whole when it is reopened.
func (l *Log) swapIn(st *stagedSegment) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	crash := func(step string) bool {
		if l.cleaning.hook == nil || !l.cleaning.hook(step) {
			return false
		}
		st.f.Close() // as a crash would; the files stay as they are
		return true
	}
	if l.closed.Load() {
		st.discard()
		return errCleanStopped
	}
	if err := l.broken(); err != nil {
		st.discard()
		return err
	}
	i := slices.Index(l.segments, st.old[0])
	if i < 0 || i+len(st.old) >= len(l.segments) || !slices.Equal(l.segments[i:i+len(st.old)], st.old) {
		st.discard()
		return errCleanRaced
	}
	if crash("staged") {
		return errSimulatedCrash
	}

	// Step 2 and 3: commit.
	for _, suf := range swapIndexSuffixes {
		if err := os.Rename(st.path(suf+cleanedSuffix), st.path(suf+swapSuffix)); err != nil {
			st.discard()
			return fmt.Errorf("log: swap cleaned segment: %w", err)
		}
	}
	if err := syncDir(l.dir); err != nil {
		st.discard()
		return fmt.Errorf("log: swap cleaned segment: %w", err)
	}
	if crash("index-renamed") {
		return errSimulatedCrash
	}
	if err := os.Rename(st.path(logSuffix+cleanedSuffix), st.path(logSuffix+swapSuffix)); err != nil {
		st.discard()
		return fmt.Errorf("log: swap cleaned segment: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		return l.fail(fmt.Errorf("swap cleaned segment: %w", err))
	}
	if crash("committed") {
		return errSimulatedCrash
	}

	// Step 4 and 5.
	var oldSize int64
	for _, s := range st.old {
		oldSize += s.w.size
		if err := s.remove(); err != nil {
			return l.fail(fmt.Errorf("swap cleaned segment: %w", err))
		}
		if crash("old-removed") {
			return errSimulatedCrash
		}
	}
	for _, suf := range swapIndexSuffixes[:3] {
		if err := os.Rename(st.path(suf+swapSuffix), st.path(suf)); err != nil {
			return l.fail(fmt.Errorf("swap cleaned segment: %w", err))
		}
	}
	if crash("index-final") {
		return errSimulatedCrash
	}
	if err := os.Rename(st.path(logSuffix+swapSuffix), st.path(logSuffix)); err != nil {
		return l.fail(fmt.Errorf("swap cleaned segment: %w", err))
	}
	os.Remove(st.path(cleanRangeSuffix + swapSuffix))
	mt := time.UnixMilli(st.modTime)
	os.Chtimes(st.path(logSuffix), mt, mt)
	if err := syncDir(l.dir); err != nil {
		return l.fail(fmt.Errorf("swap cleaned segment: %w", err))
	}
	if crash("done") {
		return errSimulatedCrash
	}

	s := &segment{base: st.base, dir: l.dir, f: st.f, w: st.m, pub: st.m, modTime: st.modTime, synced: st.m.size}
	segs := make([]*segment, 0, len(l.segments)-len(st.old)+1)
	segs = append(segs, l.segments[:i]...)
	segs = append(segs, s)
	segs = append(segs, l.segments[i+len(st.old):]...)
	l.mu.Lock()
	l.segments = segs
	l.size.Add(st.m.size - oldSize)
	l.maxTsHit = maxTsHit{}
	for _, o := range st.old {
		o.deleted.Store(true)
	}
	l.mu.Unlock()
	// Readers of the old files see them closed and look again.
	for _, o := range st.old {
		o.dropCache()
		o.f.Close()
	}
	return nil
}

// finishSwaps completes or rolls back the swaps a crash interrupted; see
// the top of this file. It runs first thing in recovery.
func (l *Log) finishSwaps() error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("log: open: %w", err)
	}
	var (
		segBases  []int64
		committed []int64
		swaps     = make(map[int64][]string)
	)
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		if base, ok := parseSegmentName(name); ok {
			segBases = append(segBases, base)
			continue
		}
		if strings.HasSuffix(name, cleanedSuffix) {
			if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
				return fmt.Errorf("log: open: remove %s: %w", name, err)
			}
			continue
		}
		if !strings.HasSuffix(name, swapSuffix) || len(name) < baseDigits {
			continue
		}
		base, err := strconv.ParseInt(name[:baseDigits], 10, 64)
		if err != nil || base < 0 || segmentName(base) != name[:baseDigits] {
			continue
		}
		swaps[base] = append(swaps[base], name)
		if name == segmentName(base)+logSuffix+swapSuffix {
			committed = append(committed, base)
		}
	}
	if len(swaps) == 0 {
		return nil
	}
	for base, names := range swaps {
		if slices.Contains(committed, base) {
			continue
		}
		for _, name := range names {
			if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
				return fmt.Errorf("log: open: remove %s: %w", name, err)
			}
		}
		l.logger.Warn("rolled back an interrupted segment swap", "dir", l.dir, "base", base)
	}
	slices.Sort(committed)
	for _, base := range committed {
		if err := l.finishSwap(base, segBases); err != nil {
			return err
		}
	}
	if err := syncDir(l.dir); err != nil {
		return fmt.Errorf("log: open: %w", err)
	}
	return nil
}

// finishSwap redoes steps 4 and 5 for the committed swap at base.
func (l *Log) finishSwap(base int64, segBases []int64) error {
	at := func(b int64, suf string) string { return filepath.Join(l.dir, segmentName(b)+suf) }
	end := base + 1
	raw, err := os.ReadFile(at(base, cleanRangeSuffix+swapSuffix))
	if err == nil {
		if e, perr := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64); perr == nil && e > base {
			end = e
		}
	}
	if end == base+1 {
		l.logger.Warn("segment swap without its range; replacing one segment", "dir", l.dir, "base", base)
	}
	rm := func(path string) error {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("log: open: finish segment swap: %w", err)
		}
		return nil
	}
	for _, b := range segBases {
		if b <= base || b >= end {
			continue
		}
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
			if err := rm(at(b, suf)); err != nil {
				return err
			}
		}
	}
	if err := rm(at(base, logSuffix)); err != nil {
		return err
	}
	for _, suf := range swapIndexSuffixes[:3] {
		if _, err := os.Stat(at(base, suf+swapSuffix)); err != nil {
			continue // renamed already: the final file is the new one
		}
		if err := rm(at(base, suf)); err != nil {
			return err
		}
		if err := os.Rename(at(base, suf+swapSuffix), at(base, suf)); err != nil {
			return fmt.Errorf("log: open: finish segment swap: %w", err)
		}
	}
	if err := os.Rename(at(base, logSuffix+swapSuffix), at(base, logSuffix)); err != nil {
		return fmt.Errorf("log: open: finish segment swap: %w", err)
	}
	if err := rm(at(base, cleanRangeSuffix+swapSuffix)); err != nil {
		return err
	}
	l.logger.Info("completed an interrupted segment swap", "dir", l.dir, "base", base, "end", end)
	return nil
}
