package log

import (
	"errors"
	"sync/atomic"
	"time"
)

// WaitFlushed blocks until every offset below off is fsynced, performing
// the fsync itself. Callers queue on one flush at a time, and each flush
// covers everything appended before it started, so callers that arrive
// while a flush runs share the next one (group commit). Offsets past the
// log end are not waited for. It fails once the log is closed or broken.
func (l *Log) WaitFlushed(off int64) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if l.flushed.Load() >= off {
		return l.broken()
	}
	l.flushWaiters.Add(1)
	l.flushMu.Lock()
	l.flushWaiters.Add(-1)
	defer l.flushMu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	if err := l.broken(); err != nil {
		return err
	}
	if l.flushed.Load() >= off {
		return nil
	}
	return l.flushLocked()
}

// WaitWritten blocks until every offset below off is in the segment
// files, in the kernel's hands if not yet durable, writing itself what
// the tail cache holds for them (write-back), through the commit ring
// where it can. It is what an acknowledgement waits for when the log
// acknowledges before the fsync (flush.messages above 1): the records it
// covers survive the broker process dying, as Kafka's do in its page
// cache. Callers that arrive while a write is under way share the next,
// as WaitFlushed's share flushes. It fails once the log is closed or
// broken.
func (l *Log) WaitWritten(off int64) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if l.written.Load() >= off || l.flushed.Load() >= off {
		return l.broken()
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	if err := l.broken(); err != nil {
		return err
	}
	if l.written.Load() >= off || l.flushed.Load() >= off {
		return nil
	}
	l.mu.RLock()
	end := l.end.Load()
	// Pending bytes are in the active segment and in those rolled just
	// before it that still have any (rolling writes them, so in practice
	// none).
	var buf [2]*segment
	todo := buf[:0]
	for i := len(l.segments) - 1; i >= 0; i-- {
		s := l.segments[i]
		if sc := s.cache.Load(); i < len(l.segments)-1 && (sc == nil || !sc.hasPending()) {
			break
		}
		todo = append(todo, s)
	}
	l.mu.RUnlock()
	for _, s := range todo {
		if err := s.writeBack(); err != nil {
			return l.fail(err)
		}
	}
	raise(&l.written, end)
	return nil
}

// raise sets v to n unless it holds more already.
func raise(v *atomic.Int64, n int64) {
	for {
		cur := v.Load()
		if n <= cur || v.CompareAndSwap(cur, n) {
			return
		}
	}
}

// flushLocked fsyncs every segment with unsynced bytes and, if segment
// files were created since the last flush, the directory; then everything
// below the log end offset seen at the start is durable.
// REQUIRES: l.flushMu held.
func (l *Log) flushLocked() error {
	type dirty struct {
		s    *segment
		size int64
	}
	l.flushes.Add(1)
	var buf [4]dirty
	todo := buf[:0]
	l.mu.RLock()
	end := l.end.Load()
	gen := l.dirGen
	// Unsynced segments are a suffix of the list: the active one and any
	// rolled since the last flush (the active one may be empty and clean
	// while the one rolled before it is not).
	for i := len(l.segments) - 1; i >= 0; i-- {
		s := l.segments[i]
		if s.pub.size > s.synced {
			todo = append(todo, dirty{s, s.pub.size})
		} else if i < len(l.segments)-1 {
			break
		}
	}
	l.mu.RUnlock()

	for _, d := range todo {
		// Write-back: the file first gets what the cache holds for it.
		durable, err := d.s.flushPending(d.size)
		if err != nil {
			return l.fail(err)
		}
		if durable {
			d.s.synced = d.size
			continue
		}
		l.syncs.Add(1)
		if err := syncData(d.s.f); err != nil {
			if d.s.deleted.Load() {
				continue // retention removed it; nothing left to make durable
			}
			return l.fail(err)
		}
		d.s.synced = d.size
	}
	if gen > l.syncedDirGen {
		if err := syncDir(l.dir); err != nil {
			return l.fail(err)
		}
		l.syncedDirGen = gen
	}
	if end > l.flushed.Load() {
		l.flushed.Store(end)
	}
	// Pages below the readers' mark are clean now: the flush loop drops
	// them (cache.go), off the path of the acknowledgements waiting.
	if min(l.readAll.Load(), end) > l.dropMark.Load() {
		select {
		case l.dropKick <- struct{}{}:
		default:
		}
	}
	return nil
}

// flushLoop flushes by itself when flush.messages > 1 (once that many
// records are unflushed; Append wakes it) or flush.ms > 0 (on a ticker),
// and drops from the page cache what readers have fetched once a flush
// made it durable (dropCache). It runs from Open to Close.
func (l *Log) flushLoop() {
	var (
		tick   *time.Ticker
		tickC  <-chan time.Time
		period time.Duration
	)
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	for {
		cfg := l.cfg.Load()
		if cfg.FlushMs != period {
			period = cfg.FlushMs
			if tick != nil {
				tick.Stop()
				tick, tickC = nil, nil
			}
			if period > 0 {
				tick = time.NewTicker(period)
				tickC = tick.C
			}
		}
		timed := false
		select {
		case <-l.stop:
			return
		case <-l.kick:
		case <-tickC:
			timed = true
		case <-l.dropKick:
			l.dropCache()
			continue
		}
		cfg = l.cfg.Load()
		unflushed := l.end.Load() - l.flushed.Load()
		if unflushed <= 0 {
			continue
		}
		if timed || (cfg.FlushMessages > 1 && unflushed >= cfg.FlushMessages) {
			if err := l.WaitFlushed(l.end.Load()); err != nil && !errors.Is(err, ErrClosed) {
				l.logger.Error("background flush", "dir", l.dir, "err", err)
			}
		}
	}
}
