package pebblestore

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/sstable"
	"github.com/cockroachdb/pebble/vfs"
)

// BulkOptions configures a bulk batch (DB.NewBulkBatch). The zero value
// is ready.
type BulkOptions struct {
	// ChunkBytes bounds the writes held in memory (keys, values and 64
	// bytes of bookkeeping each): a full chunk is sorted and written to a
	// run file, on a goroutine of its own while the next chunk fills, so
	// a bulk batch holds up to two chunks. Default 16 MiB.
	ChunkBytes int
	// TableBytes is the size at which the sstables a commit ingests are
	// cut. Default 64 MiB.
	TableBytes int
	// IngestEachChunk makes every full chunk an sstable of its own,
	// ingested at once, rather than a run merged at the commit: no run is
	// written and read again, but the tables overlap one another, so
	// they land in L0 and Pebble compacts them (writing the data again,
	// a block per system call). The default, false, was faster on the
	// restore benchmark (bench/README.md); this is kept to measure it.
	IngestEachChunk bool
}

// EnsureDefaults fills in the defaults of unset fields.
func (o BulkOptions) EnsureDefaults() BulkOptions {
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = 16 << 20
	}
	if o.TableBytes <= 0 {
		o.TableBytes = 64 << 20
	}
	return o
}

// bulkDir is the directory, inside the database's, of the bulk batches'
// run files and sstables before they are ingested. Open removes what a
// crash left there: a commit that did not finish committed nothing.
const bulkDir = "bulk-restore"

// opOverhead is what a chunk counts for an op besides its key and value
// (the bulkOp itself and the slices' share): it bounds the memory of a
// chunk of small records.
const opOverhead = 64

// Op kinds, in memory and in run files.
const (
	opSet byte = iota + 1
	opDelete
	opDeleteRange // only in memory: value is the end key
)

// bulkOp is one write. seq orders the writes of a bulk batch since its
// last commit: a later write of a key wins, and a range deletion deletes
// the writes before it, not those after.
type bulkOp struct {
	key, value []byte
	seq        uint64
	kind       byte
}

// rangeDel is a range deletion [start, end) of the writes before seq.
type rangeDel struct {
	start, end []byte
	seq        uint64
}

// bulkWriter takes a bulk batch's writes. Ops accumulate in a chunk in
// memory; a full chunk is sorted by key (later writes of a key replacing
// earlier ones) and written to a run file. Commit then either replays a
// chunk that never spilled into the batch's pebble batch, or merges the
// runs and the chunk into sorted, non-overlapping sstables, which one
// DB.Ingest adds below the memtable, usually to the bottom level: no
// write-ahead log, no memtable, and no compaction rewrites them.
//
// Range deletions (window and session stores expiring segments) are kept
// aside, with the seq at which they came: the merge drops a write that a
// later range deletion covers, and the sstables carry the deletions for
// what the database held before.
type bulkWriter struct {
	db   *DB
	task string
	opts BulkOptions
	dir  string // of this batch's files; "" until the first spill

	seq        uint64
	chunkDels  int // dels[chunkDels:] came with the chunk (IngestEachChunk)
	chunk      []bulkOp
	arena      arena
	chunkBytes int        // of chunk, with opOverhead each
	runs       []string   // run files, oldest first
	dels       []rangeDel // every range deletion since the last commit
	bytes      int        // keys and values written since the last commit
	files      int        // files named so far in dir

	// bg is the spill under way on a goroutine of its own, nil when none:
	// a full chunk is sorted and written while the next one fills, with
	// spare's buffers, so the goroutine writing into the batch (a
	// restoring worker's loop) does neither. Every step that reads the
	// runs or removes the files waits for it first (waitSpill).
	bg    *spillJob
	spare spillBuffers
}

// spillBuffers are a chunk's ops and the arena holding their bytes.
type spillBuffers struct {
	ops   []bulkOp
	arena arena
}

// spillJob writes one chunk, sorted, to a run file.
type spillJob struct {
	buf  spillBuffers
	done chan struct{} // closed once err is set
	err  error
}

// bulkSeq numbers bulk batches' directories within the process.
var bulkSeq atomic.Uint64

func (w *bulkWriter) Set(key, value []byte, _ *pebble.WriteOptions) error {
	w.add(opSet, key, value)
	return w.maybeSpill()
}

func (w *bulkWriter) Delete(key []byte, _ *pebble.WriteOptions) error {
	w.add(opDelete, key, nil)
	return w.maybeSpill()
}

func (w *bulkWriter) DeleteRange(start, end []byte, _ *pebble.WriteOptions) error {
	op := w.add(opDeleteRange, start, end)
	// Not the arena's copies: a spill reuses those, and the deletion
	// lasts until the commit.
	w.dels = append(w.dels, rangeDel{start: bytes.Clone(start), end: bytes.Clone(end), seq: op.seq})
	return w.maybeSpill()
}

func (w *bulkWriter) add(kind byte, key, value []byte) bulkOp {
	op := bulkOp{key: w.arena.copy(key), seq: w.seq, kind: kind}
	if kind != opDelete {
		op.value = w.arena.copy(value)
	}
	w.seq++
	w.chunk = append(w.chunk, op)
	w.chunkBytes += len(key) + len(value) + opOverhead
	w.bytes += len(key) + len(value)
	return op
}

func (w *bulkWriter) maybeSpill() error {
	if w.chunkBytes < w.opts.ChunkBytes {
		return nil
	}
	return w.spill()
}

// sorted returns the chunk's point writes sorted by key, the latest write
// of each key only. It reorders the chunk in place.
func (w *bulkWriter) sorted() []bulkOp { return sortOps(w.chunk) }

// sortOps returns chunk's point writes sorted by key, the latest write of
// each key only, reordering chunk in place.
func sortOps(chunk []bulkOp) []bulkOp {
	ops := slices.DeleteFunc(chunk, func(op bulkOp) bool { return op.kind == opDeleteRange })
	slices.SortFunc(ops, func(a, b bulkOp) int {
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		return -cmpSeq(a.seq, b.seq) // latest first
	})
	out := ops[:0]
	for i, op := range ops {
		if i > 0 && bytes.Equal(op.key, ops[i-1].key) {
			continue
		}
		out = append(out, op)
	}
	return out
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// spill hands the chunk to a goroutine that writes it, sorted, to a new
// run file, and goes on with the spare buffers, once the previous spill
// is done. Run files are never synced: a crash loses the uncommitted
// batch, whose files Open removes.
func (w *bulkWriter) spill() (err error) {
	if err := w.ensureDir(); err != nil {
		return err
	}
	if w.opts.IngestEachChunk {
		return w.ingestChunk()
	}
	if err := w.waitSpill(); err != nil {
		return err
	}
	path := w.nextPath("run")
	w.runs = append(w.runs, path) // removed by reset if the spill fails
	job := &spillJob{buf: spillBuffers{ops: w.chunk, arena: w.arena}, done: make(chan struct{})}
	w.chunk, w.arena, w.chunkBytes = w.spare.ops[:0], w.spare.arena, 0
	w.spare = spillBuffers{}
	w.bg = job
	fs := w.db.fs
	go func() {
		defer close(job.done)
		job.err = writeRun(fs, path, sortOps(job.buf.ops))
	}()
	return nil
}

// waitSpill waits for the spill under way, if any, and takes its buffers
// back as the spare ones.
func (w *bulkWriter) waitSpill() error {
	job := w.bg
	if job == nil {
		return nil
	}
	<-job.done
	w.bg = nil
	clear(job.buf.ops) // let the arena's oversized values go
	job.buf.arena.reset()
	w.spare = spillBuffers{ops: job.buf.ops[:0], arena: job.buf.arena}
	return job.err
}

// writeRun writes ops, sorted, to a new run file at path.
func writeRun(fs vfs.FS, path string, ops []bulkOp) (err error) {
	f, err := fs.Create(path)
	if err != nil {
		return fmt.Errorf("pebblestore: bulk run: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	var hdr [3 * binary.MaxVarintLen64]byte
	for _, op := range ops {
		h := append(hdr[:0], op.kind)
		h = binary.AppendUvarint(h, op.seq)
		h = binary.AppendUvarint(h, uint64(len(op.key)))
		bw.Write(h)
		bw.Write(op.key)
		if op.kind == opSet {
			h = binary.AppendUvarint(hdr[:0], uint64(len(op.value)))
			bw.Write(h)
			bw.Write(op.value)
		}
	}
	if err = bw.Flush(); err == nil {
		err = f.Close()
	} else {
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("pebblestore: bulk run: %w", err)
	}
	return nil
}

func (w *bulkWriter) clearChunk() {
	clear(w.chunk) // let the arena's oversized values go
	w.chunk, w.chunkBytes = w.chunk[:0], 0
	w.arena.reset()
}

func (w *bulkWriter) ensureDir() error {
	if w.dir != "" {
		return nil
	}
	dir := w.db.fs.PathJoin(w.db.dir, bulkDir, fmt.Sprintf("%s-%d", w.task, bulkSeq.Add(1)))
	if err := w.db.fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pebblestore: bulk directory: %w", err)
	}
	w.dir = dir
	return nil
}

func (w *bulkWriter) nextPath(kind string) string {
	w.files++
	return w.db.fs.PathJoin(w.dir, fmt.Sprintf("%06d.%s", w.files, kind))
}

// reset forgets every write since the last commit and removes the files.
func (w *bulkWriter) reset() error {
	w.waitSpill() // its file goes with the rest; its error with the writes
	w.clearChunk()
	w.runs, w.dels, w.chunkDels, w.bytes, w.seq = nil, nil, 0, 0, 0
	if w.dir == "" {
		return nil
	}
	dir := w.dir
	w.dir, w.files = "", 0
	if err := w.db.fs.RemoveAll(dir); err != nil {
		return fmt.Errorf("pebblestore: bulk cleanup: %w", err)
	}
	return nil
}

// flush makes the writes since the last commit part of the database, or
// of b, which the caller commits next. Without runs, the chunk's ops go
// into b in the order they came. Otherwise they are ingested, durably,
// before flush returns: the positions committed with b then never run
// ahead of the data.
func (w *bulkWriter) flush(b *pebble.Batch) error {
	if err := w.waitSpill(); err != nil {
		if rerr := w.reset(); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	if len(w.runs) == 0 {
		for _, op := range w.chunk {
			var err error
			switch op.kind {
			case opSet:
				err = b.Set(op.key, op.value, nil)
			case opDelete:
				err = b.Delete(op.key, nil)
			case opDeleteRange:
				err = b.DeleteRange(op.key, op.value, nil)
			}
			if err != nil {
				return fmt.Errorf("pebblestore: commit: %w", err)
			}
		}
		return w.reset()
	}
	var err error
	if w.opts.IngestEachChunk {
		err = w.ingestChunk()
	} else {
		err = w.ingest()
	}
	if rerr := w.reset(); err == nil {
		err = rerr
	}
	return err
}

// ingest merges the runs and the chunk into sstables and ingests them.
func (w *bulkWriter) ingest() error {
	srcs := make(mergeHeap, 0, len(w.runs)+1)
	defer func() {
		for _, s := range srcs {
			s.close()
		}
	}()
	for _, path := range w.runs {
		f, err := w.db.fs.Open(path)
		if err != nil {
			return fmt.Errorf("pebblestore: bulk run: %w", err)
		}
		r := &runSource{f: f, r: bufio.NewReaderSize(f, 256<<10)}
		srcs = append(srcs, r)
	}
	srcs = append(srcs, &memSource{ops: w.sorted(), i: -1})
	live := srcs[:0]
	for _, s := range srcs {
		if s.next() {
			live = append(live, s)
		} else if err := s.err(); err != nil {
			return err
		} else {
			s.close()
		}
	}
	srcs = live
	heap.Init(&srcs)

	t := &tableSink{w: w, frags: fragment(w.dels)}
	defer t.abort()
	var last []byte
	first := true
	for len(srcs) > 0 {
		s := srcs[0]
		op := s.op()
		// The first op of a key is its latest write; older ones follow.
		if first || !bytes.Equal(op.key, last) {
			first = false
			last = append(last[:0], op.key...)
			if err := t.add(op); err != nil {
				return err
			}
		}
		if s.next() {
			heap.Fix(&srcs, 0)
			continue
		}
		if err := s.err(); err != nil {
			return err
		}
		s.close()
		heap.Pop(&srcs)
	}
	paths, err := t.finish()
	if err != nil || len(paths) == 0 {
		return err
	}
	if err := w.db.db.Ingest(paths); err != nil {
		return fmt.Errorf("pebblestore: ingest: %w", err)
	}
	return nil
}

// ingestChunk writes the chunk, with the range deletions that came with
// it, to sstables and ingests them (IngestEachChunk). An ingestion is
// later than everything in the database, earlier chunks included, so
// its range deletions delete what they held; the chunk's own writes
// that came before a deletion are dropped here.
func (w *bulkWriter) ingestChunk() error {
	t := &tableSink{w: w, frags: fragment(w.dels[w.chunkDels:])}
	defer t.abort()
	for _, op := range w.sorted() {
		if err := t.add(op); err != nil {
			return err
		}
	}
	paths, err := t.finish()
	if err == nil && len(paths) > 0 {
		if err = w.db.db.Ingest(paths); err != nil {
			err = fmt.Errorf("pebblestore: ingest: %w", err)
		}
	}
	if err != nil {
		return err
	}
	w.runs = append(w.runs, "") // what is ingested is not in the database's batch
	w.chunkDels = len(w.dels)
	w.clearChunk()
	return nil
}

// A source is a sorted stream of ops without two of the same key.
type source interface {
	next() bool
	op() bulkOp
	err() error
	close()
}

// mergeHeap orders sources by their current op: key, then latest first.
type mergeHeap []source

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	a, b := h[i].op(), h[j].op()
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c < 0
	}
	return a.seq > b.seq
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(source)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// memSource reads the sorted chunk.
type memSource struct {
	ops []bulkOp
	i   int
}

func (s *memSource) next() bool { s.i++; return s.i < len(s.ops) }
func (s *memSource) op() bulkOp { return s.ops[s.i] }
func (s *memSource) err() error { return nil }
func (s *memSource) close()     {}

// runSource reads a run file. The op it returns is valid until next.
type runSource struct {
	f   vfs.File
	r   *bufio.Reader
	cur bulkOp
	buf []byte
	e   error
}

func (s *runSource) next() bool {
	kind, err := s.r.ReadByte()
	if err == io.EOF {
		return false
	}
	if err == nil {
		s.cur.kind = kind
		s.cur.seq, err = binary.ReadUvarint(s.r)
	}
	var klen, vlen uint64
	if err == nil {
		klen, err = binary.ReadUvarint(s.r)
	}
	if err == nil {
		s.buf = slices.Grow(s.buf[:0], int(klen))[:klen]
		_, err = io.ReadFull(s.r, s.buf)
	}
	if err == nil && kind == opSet {
		if vlen, err = binary.ReadUvarint(s.r); err == nil {
			s.buf = slices.Grow(s.buf, int(vlen))[:int(klen+vlen)]
			_, err = io.ReadFull(s.r, s.buf[klen:])
		}
	}
	if err == nil && kind != opSet && kind != opDelete {
		err = fmt.Errorf("op kind %d", kind)
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		s.e = fmt.Errorf("%w: bulk run: %v", ErrCorrupt, err)
		return false
	}
	s.cur.key = s.buf[:klen:klen]
	s.cur.value = nil
	if kind == opSet {
		s.cur.value = s.buf[klen:]
	}
	return true
}

func (s *runSource) op() bulkOp { return s.cur }
func (s *runSource) err() error { return s.e }
func (s *runSource) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// frag is a piece of the union of range deletions: [start, end), deleting
// the writes before seq.
type frag struct {
	start, end []byte
	seq        uint64
}

// fragment cuts dels into sorted, disjoint pieces, each with the latest
// seq of the deletions covering it.
func fragment(dels []rangeDel) []frag {
	if len(dels) == 0 {
		return nil
	}
	var bounds [][]byte
	for _, d := range dels {
		bounds = append(bounds, d.start, d.end)
	}
	slices.SortFunc(bounds, bytes.Compare)
	bounds = slices.CompactFunc(bounds, bytes.Equal)
	byStart := slices.SortedFunc(slices.Values(dels), func(a, b rangeDel) int { return bytes.Compare(a.start, b.start) })
	var out []frag
	active := &delHeap{}
	next := 0
	for i := 0; i+1 < len(bounds); i++ {
		lo, hi := bounds[i], bounds[i+1]
		for next < len(byStart) && bytes.Compare(byStart[next].start, lo) <= 0 {
			if bytes.Compare(byStart[next].end, byStart[next].start) > 0 {
				heap.Push(active, byStart[next])
			}
			next++
		}
		// Deletions ending at or before lo cover nothing from here on;
		// those left under the top are dropped when they reach it.
		for active.Len() > 0 && bytes.Compare((*active)[0].end, lo) <= 0 {
			heap.Pop(active)
		}
		if active.Len() == 0 {
			continue
		}
		seq := (*active)[0].seq
		if n := len(out); n > 0 && out[n-1].seq == seq && bytes.Equal(out[n-1].end, lo) {
			out[n-1].end = hi
			continue
		}
		out = append(out, frag{start: lo, end: hi, seq: seq})
	}
	return out
}

// delHeap holds range deletions, the latest on top.
type delHeap []rangeDel

func (h delHeap) Len() int           { return len(h) }
func (h delHeap) Less(i, j int) bool { return h[i].seq > h[j].seq }
func (h delHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delHeap) Push(x any)        { *h = append(*h, x.(rangeDel)) }
func (h *delHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// tableSink writes the merged ops, in key order, to sstables of about
// TableBytes, and the range deletions' fragments into the tables whose
// span they fall in, cut at the tables' bounds: the tables never overlap,
// so one ingestion takes them all.
type tableSink struct {
	w     *bulkWriter
	frags []frag // not yet written; frags[0].start may be a cut
	cur   *sstable.Writer
	path  string
	paths []string
}

// add writes op unless a later range deletion deletes it.
func (t *tableSink) add(op bulkOp) error {
	for len(t.frags) > 0 && bytes.Compare(t.frags[0].end, op.key) <= 0 {
		if err := t.writeFrags(nil); err != nil {
			return err
		}
	}
	if len(t.frags) > 0 && bytes.Compare(t.frags[0].start, op.key) <= 0 && t.frags[0].seq > op.seq {
		return nil
	}
	if t.cur != nil && t.cur.EstimatedSize() >= uint64(t.w.opts.TableBytes) {
		if err := t.writeFrags(op.key); err != nil {
			return err
		}
		if err := t.closeTable(); err != nil {
			return err
		}
	}
	if err := t.open(); err != nil {
		return err
	}
	var err error
	if op.kind == opSet {
		err = t.cur.Set(op.key, op.value)
	} else {
		err = t.cur.Delete(op.key)
	}
	if err != nil {
		return fmt.Errorf("pebblestore: bulk table: %w", err)
	}
	return nil
}

// writeFrags writes into the current table the fragments that start
// before upper (nil: all of them, or the first only when it ends before
// the next key added), cut at upper.
func (t *tableSink) writeFrags(upper []byte) error {
	for len(t.frags) > 0 {
		f := &t.frags[0]
		if upper != nil && bytes.Compare(f.start, upper) >= 0 {
			return nil
		}
		if err := t.open(); err != nil {
			return err
		}
		end := f.end
		if upper != nil && bytes.Compare(upper, end) < 0 {
			end = upper
		}
		if err := t.cur.DeleteRange(f.start, end); err != nil {
			return fmt.Errorf("pebblestore: bulk table: %w", err)
		}
		if bytes.Equal(end, f.end) {
			t.frags = t.frags[1:]
		} else {
			f.start = bytes.Clone(end) // upper is the caller's, maybe a run's buffer
		}
		if upper == nil {
			return nil
		}
	}
	return nil
}

func (t *tableSink) open() error {
	if t.cur != nil {
		return nil
	}
	if err := t.w.ensureDir(); err != nil {
		return err
	}
	t.path = t.w.nextPath("sst")
	f, err := t.w.db.fs.Create(t.path)
	if err != nil {
		return fmt.Errorf("pebblestore: bulk table: %w", err)
	}
	t.cur = sstable.NewWriter(&bufWritable{f: f, buf: make([]byte, 0, 1<<20)}, t.w.db.tableOpts)
	return nil
}

// closeTable finishes the current table, synced (as Ingest requires).
func (t *tableSink) closeTable() error {
	if t.cur == nil {
		return nil
	}
	err := t.cur.Close()
	t.cur = nil
	if err != nil {
		return fmt.Errorf("pebblestore: bulk table: %w", err)
	}
	t.paths = append(t.paths, t.path)
	return nil
}

// finish writes the fragments left and closes the last table.
func (t *tableSink) finish() ([]string, error) {
	for len(t.frags) > 0 {
		if err := t.writeFrags(nil); err != nil {
			return nil, err
		}
	}
	if err := t.closeTable(); err != nil {
		return nil, err
	}
	return t.paths, nil
}

// abort drops an unfinished table; the bulk writer's reset removes the
// files.
func (t *tableSink) abort() {
	if t.cur != nil {
		t.cur.Close()
		t.cur = nil
	}
}

// bufWritable is an objstorage.Writable that writes a file in pieces of
// 1 MiB: Pebble's own writes a table block (about 4 KiB) per system call,
// the largest cost of a restore through Pebble's flushes and compactions.
type bufWritable struct {
	f   vfs.File
	buf []byte
}

func (w *bufWritable) Write(p []byte) error {
	if len(w.buf)+len(p) > cap(w.buf) {
		if err := w.flush(); err != nil {
			return err
		}
		if len(p) >= cap(w.buf) {
			_, err := w.f.Write(p)
			return err
		}
	}
	w.buf = append(w.buf, p...)
	return nil
}

func (w *bufWritable) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.f.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

// Finish writes what is buffered and syncs and closes the file.
func (w *bufWritable) Finish() error {
	err := w.flush()
	if err == nil {
		err = w.f.Sync()
	}
	return errors.Join(err, w.f.Close())
}

// Abort closes the file.
func (w *bufWritable) Abort() { w.f.Close() }

// arena holds a chunk's keys and values in blocks of 1 MiB, reused after
// each spill: copying a write costs no allocation of its own, and the
// chunk never grows by copying.
type arena struct {
	blocks [][]byte
	cur    int // index of the block being filled
}

const arenaBlock = 1 << 20

func (a *arena) copy(p []byte) []byte {
	if p == nil {
		return nil
	}
	if len(p) > arenaBlock/4 {
		return bytes.Clone(p)
	}
	for {
		if a.cur == len(a.blocks) {
			a.blocks = append(a.blocks, make([]byte, 0, arenaBlock))
		}
		b := a.blocks[a.cur]
		if len(b)+len(p) <= cap(b) {
			out := append(b, p...)
			a.blocks[a.cur] = out
			return out[len(b):len(out):len(out)]
		}
		a.cur++
	}
}

func (a *arena) reset() {
	for i := range a.blocks {
		a.blocks[i] = a.blocks[i][:0]
	}
	a.cur = 0
}
