package broker

import (
	"sync"
	"time"
)

// readMarks follows where each connection fetching a partition has read
// to: a fetch at offset X says its reader has every record below X. The
// lowest mark of the readers seen lately is what every active reader has
// fetched, and the log may drop those records' pages from the page cache
// (log.DropCachedBelow; see broker/internal/log/cache.go for why).
//
// A reader that stops fetching — closed, paused, moved to another
// partition by a rebalance — stops holding the mark back after
// readMarkIdle. A partition nobody fetches drops nothing.
type readMarks struct {
	mu    sync.Mutex
	marks []readMark // at most maxReadMarks
}

type readMark struct {
	conn uint64 // the connection's id
	off  int64  // its last fetch offset
	seen int64  // when, in Unix nanoseconds
}

// noteRead records that conn fetched the partition at off, at now (Unix
// nanoseconds), and, with drop, lets the log drop from the page cache
// what every active reader has fetched.
func (p *partition) noteRead(conn uint64, off, now int64, drop bool) {
	low := p.reads.note(conn, off, now)
	if drop {
		p.log.DropCachedBelow(low)
	}
}

// writeDirect sets how the next append is written when direct writes are
// on (unless Config.DisableDirectWrites): always directly when the
// broker's direct writes' cache keeps the tail for its readers
// (Config.TailCacheBytes); else directly while no connection has fetched
// the partition within readMarkIdle, and through the page cache
// otherwise, so that readers of the tail find it there.
// REQUIRES: p.appendMu held.
func (p *partition) writeDirect() {
	if p.directWrites {
		p.log.SetDirectWrites(p.tailCached || !p.reads.active(time.Now().UnixNano()))
	}
}

const (
	// readMarkIdle is how long a reader's mark counts after its last
	// fetch. A long-polling consumer of a quiet partition fetches it at
	// least every fetch max wait (franz-go: 5 s).
	readMarkIdle = 30 * time.Second
	// maxReadMarks bounds the readers followed per partition. With more,
	// the longest silent gives way to a new one: its records may then be
	// dropped before it reads them, and it reads them from disk.
	maxReadMarks = 16
)

// note records that conn fetched at off, at now (Unix nanoseconds), and
// returns the lowest mark of the readers seen within readMarkIdle.
func (r *readMarks) note(conn uint64, off, now int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	found := false
	low := off
	live := r.marks[:0]
	for i := range r.marks {
		m := r.marks[i]
		if m.conn == conn {
			m.off, m.seen, found = off, now, true
		} else if now-m.seen > int64(readMarkIdle) {
			continue // gone quiet: forget it
		}
		live = append(live, m)
		low = min(low, m.off)
	}
	r.marks = live
	if !found {
		if len(r.marks) == maxReadMarks {
			oldest := 0
			for i := range r.marks {
				if r.marks[i].seen < r.marks[oldest].seen {
					oldest = i
				}
			}
			r.marks = append(r.marks[:oldest], r.marks[oldest+1:]...)
			low = off
			for _, m := range r.marks {
				low = min(low, m.off)
			}
		}
		r.marks = append(r.marks, readMark{conn: conn, off: off, seen: now})
	}
	return low
}

// active reports whether a connection has fetched the partition within
// readMarkIdle of now (Unix nanoseconds).
func (r *readMarks) active(now int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.marks {
		if now-m.seen <= int64(readMarkIdle) {
			return true
		}
	}
	return false
}
