package main

import (
	"encoding/binary"
	"errors"
	"sort"
	"sync"
)

// batchHeaderSize is the fixed part of a v2 record batch up to and
// including its record count.
const batchHeaderSize = 61

// partition is one partition's batches in offset order, each the bytes
// the producer sent with its base offset rewritten (the base offset is
// outside the batch's CRC).
type partition struct {
	batches [][]byte
	bases   []int64 // base offset of each batch
	hw      int64   // the next offset
}

// store is every topic's partitions. changed is closed and replaced on
// every append, so that long-polling fetches wake.
type store struct {
	mu      sync.Mutex
	topics  map[string][]*partition
	changed chan struct{}
}

func newStore() *store {
	return &store{topics: map[string][]*partition{}, changed: make(chan struct{})}
}

// create adds a topic of n partitions; false when it exists.
func (s *store) create(topic string, n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.topics[topic]; ok {
		return false
	}
	ps := make([]*partition, n)
	for i := range ps {
		ps[i] = &partition{}
	}
	s.topics[topic] = ps
	return true
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
		part.batches = append(part.batches, b)
		part.bases = append(part.bases, part.hw)
		part.hw += int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1 // last offset delta
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return first, nil
}

// read returns the whole batches from the one holding offset on, within
// maxBytes but at least one when atLeastOne, the high watermark, and
// whether offset is out of range.
func (s *store) read(topic string, p int32, offset int64, maxBytes int, atLeastOne bool) (batches [][]byte, size int, hw int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.topics[topic]
	if p < 0 || int(p) >= len(ps) {
		return nil, 0, 0, errUnknown
	}
	part := ps[p]
	if offset < 0 || offset > part.hw {
		return nil, 0, part.hw, errOutOfRange
	}
	if offset == part.hw {
		return nil, 0, part.hw, nil
	}
	i := sort.Search(len(part.bases), func(i int) bool { return part.bases[i] > offset }) - 1
	for i = max(i, 0); i < len(part.batches); i++ {
		b := part.batches[i]
		if size+len(b) > maxBytes && !(atLeastOne && len(batches) == 0) {
			break
		}
		batches = append(batches, b)
		size += len(b)
	}
	return batches, size, part.hw, nil
}

var errOutOfRange = errors.New("offset out of range")

// waitCh is closed on the next append.
func (s *store) waitCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}
