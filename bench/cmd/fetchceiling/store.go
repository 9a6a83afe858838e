package main

import (
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"sort"
	"sync"
	"time"
)

// batchHeaderSize is the fixed part of a v2 record batch up to and
// including its record count.
const batchHeaderSize = 61

// partition is one partition's batches in offset order, each the bytes
// the producer sent with its base offset rewritten (the base offset is
// outside the batch's CRC).
//
// With a file (sendfile mode) the batches are written to it, an unlinked
// file on tmpfs, so memory still, and only their places are kept.
type partition struct {
	batches [][]byte // in memory mode
	f       *os.File // in sendfile mode
	pos     []int64  // place of each batch in f
	size    int64    // bytes in f
	bases   []int64  // base offset of each batch
	hw      int64    // the next offset
	// waiters are the long-polling fetches reading this partition, each
	// told (without blocking: the channel has room for one) on the next
	// append.
	waiters []chan<- struct{}
	// marks holds each fetching connection's last fetch offset (see
	// noteRead); the first dropped batches are nil, and start is the
	// first offset still kept.
	marks   map[any]readMark
	dropped int
	start   int64
}

// readMark is where a connection last fetched a partition from, and when.
type readMark struct {
	offset int64
	seen   time.Time
}

// readMarkTTL is how long a connection's last fetch counts as a reader
// still reading, as the broker's page cache drop-behind counts them.
const readMarkTTL = 30 * time.Second

// span is what a read returns: the batches, in memory or as a range of
// the partition's file.
type span struct {
	batches [][]byte
	f       *os.File
	pos     int64
	n       int
}

// store is every topic's partitions.
type store struct {
	dir    string // tmpfs directory for the sendfile mode; "" keeps batches in memory
	mu     sync.Mutex
	topics map[string][]*partition
}

func newStore(dir string) *store {
	return &store{dir: dir, topics: map[string][]*partition{}}
}

var errExists = errors.New("topic exists")

// create adds a topic of n partitions.
func (s *store) create(topic string, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.topics[topic]; ok {
		return errExists
	}
	ps := make([]*partition, n)
	for i := range ps {
		ps[i] = &partition{}
		if s.dir != "" {
			f, err := os.CreateTemp(s.dir, "fetchceiling-")
			if err != nil {
				return err
			}
			// Unlinked: the file lives as long as the process holds it.
			os.Remove(f.Name())
			ps[i].f = f
		}
	}
	s.topics[topic] = ps
	return nil
}

// partitions returns a topic's partition count, -1 when unknown.
func (s *store) partitions(topic string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, ok := s.topics[topic]
	if !ok {
		return -1
	}
	return len(ps)
}

var (
	errUnknown = errors.New("unknown topic or partition")
	errCorrupt = errors.New("corrupt record batch")
)

// appendBatches keeps the batches of a Produce (which alias the request's
// frame, never reused) and returns the first offset given to them.
func (s *store) appendBatches(topic string, p int32, raw []byte) (int64, error) {
	// Split first, so a bad frame stores nothing.
	var batches [][]byte
	for rest := raw; len(rest) > 0; {
		if len(rest) < batchHeaderSize {
			return 0, errCorrupt
		}
		size := int64(binary.BigEndian.Uint32(rest[8:])) + 12
		if size < batchHeaderSize || size > int64(len(rest)) {
			return 0, errCorrupt
		}
		batches = append(batches, rest[:size])
		rest = rest[size:]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.topics[topic]
	if p < 0 || int(p) >= len(ps) {
		return 0, errUnknown
	}
	part := ps[p]
	first := part.hw
	for _, b := range batches {
		binary.BigEndian.PutUint64(b, uint64(part.hw))
		if part.f != nil {
			if _, err := part.f.WriteAt(b, part.size); err != nil {
				return 0, err
			}
			part.pos = append(part.pos, part.size)
			part.size += int64(len(b))
		} else {
			part.batches = append(part.batches, b)
		}
		part.bases = append(part.bases, part.hw)
		part.hw += int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1 // last offset delta
	}
	// Wake only the fetches reading this partition: with many consumers
	// on many partitions, waking every long poll on every append would
	// cost the ceiling CPU a broker need not spend.
	for _, w := range part.waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	part.waiters = part.waiters[:0]
	return first, nil
}

// read returns the whole batches from the one holding offset on, within
// maxBytes but at least one when atLeastOne, and the high watermark.
func (s *store) read(topic string, p int32, offset int64, maxBytes int, atLeastOne bool) (sp span, hw int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.topics[topic]
	if p < 0 || int(p) >= len(ps) {
		return span{}, 0, errUnknown
	}
	part := ps[p]
	if offset < part.start || offset > part.hw {
		return span{}, part.hw, errOutOfRange
	}
	if offset == part.hw {
		return span{}, part.hw, nil
	}
	first := max(sort.Search(len(part.bases), func(i int) bool { return part.bases[i] > offset })-1, 0)
	batchSize := func(i int) int {
		if part.f == nil {
			return len(part.batches[i])
		}
		end := part.size
		if i+1 < len(part.pos) {
			end = part.pos[i+1]
		}
		return int(end - part.pos[i])
	}
	for i := first; i < len(part.bases); i++ {
		size := batchSize(i)
		if sp.n+size > maxBytes && !(atLeastOne && sp.n == 0) {
			break
		}
		if part.f == nil {
			sp.batches = append(sp.batches, part.batches[i])
		}
		sp.n += size
	}
	if part.f != nil && sp.n > 0 {
		sp.f, sp.pos = part.f, part.pos[first]
	}
	return sp, part.hw, nil
}

var errOutOfRange = errors.New("offset out of range")

// bounds returns a partition's first kept offset and its high watermark.
func (s *store) bounds(topic string, p int32) (start, hw int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	part := s.lookup(topicPartition{topic, p})
	if part == nil {
		return 0, 0, errUnknown
	}
	return part.start, part.hw, nil
}

// noteRead records that reader (a connection) fetched a partition from
// offset at now, and, in memory mode, drops the batches that every
// connection seen fetching it within readMarkTTL has fetched: the Go heap
// then reuses their memory instead of growing into pages new to the
// process, which cost several times more to write on some VMs, as Runnel's
// broker drops its page cache behind its readers (bench/README.md, "Page
// cache drop-behind"). A partition nobody fetches keeps every batch.
func (s *store) noteRead(topic string, p int32, reader any, offset int64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	part := s.lookup(topicPartition{topic, p})
	if part == nil || part.f != nil || offset < part.start || offset > part.hw {
		return
	}
	if part.marks == nil {
		part.marks = map[any]readMark{}
	}
	part.marks[reader] = readMark{offset, now}
	low := offset
	for r, m := range part.marks {
		if now.Sub(m.seen) > readMarkTTL {
			delete(part.marks, r)
			continue
		}
		low = min(low, m.offset)
	}
	for part.dropped < len(part.bases) {
		next := part.hw
		if part.dropped+1 < len(part.bases) {
			next = part.bases[part.dropped+1]
		}
		if next > low {
			break
		}
		part.batches[part.dropped] = nil
		part.dropped++
		part.start = next
	}
}

// topicPartition names one partition.
type topicPartition struct {
	topic string
	p     int32
}

// watch has w told on the next append to any of tps (the unknown ones
// are skipped, and a partition already watching w keeps it once);
// unwatch stops that.
func (s *store) watch(w chan<- struct{}, tps []topicPartition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tp := range tps {
		if part := s.lookup(tp); part != nil && !slices.Contains(part.waiters, w) {
			part.waiters = append(part.waiters, w)
		}
	}
}

func (s *store) unwatch(w chan<- struct{}, tps []topicPartition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tp := range tps {
		if part := s.lookup(tp); part != nil {
			part.waiters = slices.DeleteFunc(part.waiters, func(x chan<- struct{}) bool { return x == w })
		}
	}
}

// lookup returns a partition, nil if unknown. s.mu must be held.
func (s *store) lookup(tp topicPartition) *partition {
	ps := s.topics[tp.topic]
	if tp.p < 0 || int(tp.p) >= len(ps) {
		return nil
	}
	return ps[tp.p]
}
