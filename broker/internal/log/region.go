package log

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"
)

// Regions: reads that leave the bytes in the file.
//
// ReadRegion finds the same batches Read would return but, rather than
// copying them into memory, returns their place in a segment file so the
// caller can send them to a socket with sendfile. The region holds its
// own descriptor of the segment file (a dup), so retention deleting the
// segment or compaction swapping it away does not take the bytes from
// under it: both unlink or replace files, and an open descriptor keeps
// the old inode, whose bytes below the published size are never written
// again while the log is open.
//
// The one change in place is truncation, which happens only to a closed
// log (TruncateDir, ResetDir). So Close revokes every region still held:
// it calls each region's revoke function (the caller closes the
// connection that would send it, so no byte of a truncated file goes out
// after) and waits for the holders to release them.
//
// When the log's tail cache (tailcache.go) holds all of a region's
// batches, the region is their memory there instead: the pages are
// referenced until Release, so eviction cannot reuse them, and nothing
// needs revoking, since memory is not truncated.

// ErrNoPin is returned by ReadRegion when the segment file cannot be
// given its own descriptor (out of descriptors, or a platform without
// dup): the caller reads with Read instead.
var ErrNoPin = errors.New("log: cannot pin segment file")

// Region is a run of whole batches in a segment file, pinned until
// Release.
type Region struct {
	f *os.File
	// Pos and Len place the batches in the file.
	Pos, Len int64
	// Records is the number of records in the batches, from their
	// headers; Next is the offset after the last batch.
	Records int64
	Next    int64

	l      *Log
	revoke func()

	// mem holds the batches instead of the file when the tail cache
	// had them all: slices of pages, referenced until Release.
	mem   [][]byte
	pages []*tcPage
	tc    *TailCache
	// direct is the buffer mem is in when the batches were read from
	// the file with O_DIRECT (direct_read.go), given back at Release.
	direct *directBuf
}

// File is the file holding the region, open until Release, or nil when
// the region is in memory (Mem). Read it with ReadAt or sendfile at an
// explicit offset: its file offset is shared with the log's own
// descriptor.
func (r *Region) File() *os.File { return r.f }

// Mem is the region's bytes, in order, when it is held in memory (the
// log's tail cache, or a buffer it was read into with direct reads)
// rather than in a file: valid until Release, and not to be written to.
func (r *Region) Mem() [][]byte { return r.mem }

// Bytes returns a copy of the region's bytes.
func (r *Region) Bytes() ([]byte, error) {
	buf := make([]byte, r.Len)
	if r.mem != nil {
		n := 0
		for _, b := range r.mem {
			n += copy(buf[n:], b)
		}
		return buf, nil
	}
	if _, err := r.f.ReadAt(buf, r.Pos); err != nil {
		return nil, fmt.Errorf("log: reading a region: %w", err)
	}
	return buf, nil
}

// Release unpins the region and closes its descriptor, or gives back its
// memory. Releasing twice, or a nil region, is a no-op.
func (r *Region) Release() {
	if r == nil {
		return
	}
	if r.pages != nil {
		for _, p := range r.pages {
			r.tc.unref(p)
		}
		r.pages, r.mem = nil, nil
		return
	}
	if r.direct != nil {
		r.direct.release()
		r.direct, r.mem = nil, nil
		return
	}
	if r.l == nil {
		return
	}
	r.l.pins.remove(r)
	r.f.Close()
	r.l = nil
}

// RegionResult is what ReadRegion returns.
type RegionResult struct {
	// Region is nil when no batch is available below maxOffset.
	Region *Region
	// LogStartOffset is the log start offset when the read was made.
	LogStartOffset int64
}

// pinSet is the regions a log has handed out and not yet had back.
type pinSet struct {
	mu   sync.Mutex // guards the following
	held map[*Region]struct{}
	// gone is signalled (without blocking) when a region is removed.
	gone chan struct{}
}

func (ps *pinSet) add(r *Region) {
	ps.mu.Lock()
	if ps.held == nil {
		ps.held = make(map[*Region]struct{})
		ps.gone = make(chan struct{}, 1)
	}
	ps.held[r] = struct{}{}
	ps.mu.Unlock()
}

func (ps *pinSet) remove(r *Region) {
	ps.mu.Lock()
	delete(ps.held, r)
	if ps.gone != nil {
		select {
		case ps.gone <- struct{}{}:
		default:
		}
	}
	ps.mu.Unlock()
}

// revokeWait is how long Close waits for revoked regions to be released.
// A holder releases promptly once its connection is closed; the bound
// only keeps a bug in a holder from hanging Close. Past it the revoke has
// still closed the connections, so nothing more is sent from the files.
const revokeWait = 10 * time.Second

// revokeAll calls the revoke function of every region held and waits
// until they are released (or revokeWait passes). REQUIRES: l.closed set,
// so no region is added after.
func (l *Log) revokeAll() {
	ps := &l.pins
	ps.mu.Lock()
	var revokes []func()
	for r := range ps.held {
		if r.revoke != nil {
			revokes = append(revokes, r.revoke)
		}
	}
	ps.mu.Unlock()
	for _, f := range revokes {
		f()
	}
	deadline := time.NewTimer(revokeWait)
	defer deadline.Stop()
	for {
		ps.mu.Lock()
		n, gone := len(ps.held), ps.gone
		ps.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-gone:
		case <-deadline.C:
			l.logger.Warn("closing with file regions still held", "dir", l.dir, "regions", n)
			return
		}
	}
}

// ReadRegion is Read without the copy: it returns where in a segment file
// the batches Read would return lie, pinned until the region's Release.
// revoke is called if the log is closed while the region is held; it
// must make the holder stop sending the region and release it.
func (l *Log) ReadRegion(offset int64, maxBytes int32, maxOffset int64, revoke func()) (RegionResult, error) {
	for attempt := 0; ; attempt++ {
		if l.closed.Load() {
			return RegionResult{}, ErrClosed
		}
		res, err := l.readRegionOnce(offset, maxBytes, maxOffset, revoke)
		if err != nil && errors.Is(err, os.ErrClosed) {
			// The segment was deleted (or the log closed) before its
			// file was pinned; look again.
			if attempt < readRetries {
				continue
			}
			return RegionResult{}, fmt.Errorf("%w: read raced segment deletion", ErrClosed)
		}
		return res, err
	}
}

func (l *Log) readRegionOnce(offset int64, maxBytes int32, maxOffset int64, revoke func()) (RegionResult, error) {
	var res RegionResult
	dr := l.directReads.Load()
	start, err := l.walkSegments(offset, maxOffset, func(v *segView, offset, maxOffset int64) (bool, error) {
		if dr != nil {
			r, exhausted, ok, err := dr.read(l, v, offset, maxBytes, maxOffset)
			if ok || err != nil {
				if r.Len > 0 {
					res.Region = &r
				}
				return exhausted, err
			}
		}
		r, exhausted, err := v.scan(offset, maxBytes, maxOffset, v.headerAt)
		if err != nil || exhausted || r.Len == 0 {
			return exhausted, err
		}
		if v.c != nil {
			r.mem, r.pages = v.c.ref(r.Pos, r.Len)
			v.c.tc.count(r.mem != nil, r.Len)
			if r.mem != nil {
				r.tc = v.c.tc
				res.Region = &r
				return false, nil
			}
			if !v.c.fileHas(r.Pos + r.Len) {
				// Partly below the cache and partly not in the
				// file yet (write-back): a copy.
				buf := make([]byte, r.Len)
				if _, err := v.readAt(buf, r.Pos, false); err != nil {
					return false, err
				}
				r.mem = [][]byte{buf}
				res.Region = &r
				return false, nil
			}
		}
		if err := l.pin(&r, v.f, revoke); err != nil {
			return false, err
		}
		res.Region = &r
		return false, nil
	})
	if err != nil {
		return RegionResult{}, err
	}
	res.LogStartOffset = start
	return res, nil
}

// pin gives r its own descriptor of f and registers it with the log. It
// fails with os.ErrClosed when f was closed (the segment deleted) before
// the dup, with ErrClosed when the log closed meanwhile, and with ErrNoPin
// when no descriptor can be had.
func (l *Log) pin(r *Region, f *os.File, revoke func()) error {
	df, err := dupFile(f)
	if err != nil {
		return err
	}
	r.f = df
	r.l = l
	r.revoke = revoke
	l.pins.add(r)
	// Close sets closed before it revokes: a region added after the
	// revoke sees it here and is given back.
	if l.closed.Load() {
		r.Release()
		return ErrClosed
	}
	return nil
}

// scanStart is where scan starts looking for offset in the segment, and
// limit where it stops (the size, or the first batch the index places at
// or past maxOffset). exhausted reports that the segment holds no batch
// at or after offset.
func (v *segView) scanStart(offset, maxOffset int64) (pos, limit int64, exhausted bool) {
	size := v.m.size
	if size == 0 || offset >= v.m.next {
		return 0, 0, true
	}
	rel := uint32(min(offset-v.base, math.MaxUint32))
	pos = floorPos(v.m.index, rel)
	limit = size
	if maxOffset < v.m.next {
		if p, ok := ceilPos(v.m.index, uint32(min(maxOffset-v.base, math.MaxUint32))); ok {
			limit = p
		}
	}
	return pos, limit, false
}

// headerAt reads the batch header at pos into hb, from the tail cache or
// the file.
func (v *segView) headerAt(hb []byte, pos int64) error {
	_, err := v.readAt(hb, pos, false)
	return err
}

// scan is read without the copy: it reads only batch headers, with
// headerAt, and returns the region (File unset) of the batches read would
// return; exhausted reports that the segment holds no batch at or after
// offset.
func (v *segView) scan(offset int64, maxBytes int32, maxOffset int64, headerAt func(hb []byte, pos int64) error) (r Region, exhausted bool, err error) {
	pos, limit, exhausted := v.scanStart(offset, maxOffset)
	if exhausted {
		return Region{}, true, nil
	}
	size := v.m.size
	if pos >= limit {
		return Region{}, false, nil
	}
	mb := max(int64(maxBytes), 1)
	var hb [batchHeaderSize]byte
	first := int64(-1)
	for pos < limit {
		if first >= 0 && pos-first+batchHeaderSize > mb {
			break
		}
		if pos+batchHeaderSize > limit {
			return Region{}, false, fmt.Errorf("%w: segment %d: data ends at %d, need %d", ErrCorrupt, v.base, limit, pos+batchHeaderSize)
		}
		if err := headerAt(hb[:], pos); err != nil {
			return Region{}, false, err
		}
		h, err := parseHeader(hb[:])
		if err != nil {
			return Region{}, false, fmt.Errorf("segment %d position %d: %w", v.base, pos, err)
		}
		if pos+h.size > limit {
			return Region{}, false, fmt.Errorf("%w: segment %d position %d: batch of %d bytes runs past %d", ErrCorrupt, v.base, pos, h.size, limit)
		}
		if first < 0 {
			if h.lastOffset() < offset {
				pos += h.size
				continue
			}
			if h.lastOffset() >= maxOffset {
				break
			}
			first = pos
		} else if h.lastOffset() >= maxOffset || pos+h.size-first > mb {
			break
		}
		r.Records += int64(h.records)
		r.Next = h.lastOffset() + 1
		pos += h.size
	}
	if first < 0 {
		return Region{}, limit == size && pos >= size, nil
	}
	r.Pos, r.Len = first, pos-first
	return r, false, nil
}
