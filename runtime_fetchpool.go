package runnel

import (
	"math/bits"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// fetchRecords is the pool of the []kgo.Record slices the client decodes
// fetched batches into (kgo.PoolRecords): the loop recycles each record
// once its task processed it (runner.process), and a batch's slice comes
// back here when its last record is recycled. Without it the client makes
// a slice per batch, about 170 bytes per record fetched. Records the loop
// does not recycle (skipped by the deserialization handler, which may
// keep them; read by several sub-topologies; dropped by an abort) are
// left to the garbage collector with their slice.
//
// Slices are kept by capacity, in powers of two, in free lists rather
// than sync.Pools: a sync.Pool empties at every other garbage collection,
// and the consumer's slices stay out for a few fetches, so most gets
// missed. The lists together hold at most maxFreeRecords records.
type fetchRecords struct {
	mu    sync.Mutex // guards the following
	free  [maxFetchRecordsShift + 1][][]kgo.Record
	count int // records of capacity in free
}

// maxFetchRecordsShift bounds the pooled slices at 1<<16 records; larger
// batches are left to the garbage collector.
const maxFetchRecordsShift = 16

// maxFreeRecords bounds the capacity the free lists keep: about 12 MiB
// of kgo.Records.
const maxFreeRecords = 1 << 16

var _ kgo.PoolRecords = (*fetchRecords)(nil)

// fetchRecordPool is the workers' fetchRecords.
var fetchRecordPool fetchRecords

// GetRecords implements kgo.PoolRecords.
func (p *fetchRecords) GetRecords(n int) []kgo.Record {
	shift := bits.Len(uint(max(n, 1) - 1)) // the smallest 1<<shift >= n
	if shift > maxFetchRecordsShift {
		return make([]kgo.Record, 0, n)
	}
	p.mu.Lock()
	if l := p.free[shift]; len(l) > 0 {
		s := l[len(l)-1]
		l[len(l)-1] = nil
		p.free[shift] = l[:len(l)-1]
		p.count -= cap(s)
		p.mu.Unlock()
		return s[:0]
	}
	p.mu.Unlock()
	return make([]kgo.Record, 0, 1<<shift)
}

// PutRecords implements kgo.PoolRecords. The client zeroed the records.
func (p *fetchRecords) PutRecords(s []kgo.Record) {
	c := cap(s)
	if c == 0 {
		return
	}
	shift := bits.Len(uint(c)) - 1 // the largest 1<<shift <= c
	if shift > maxFetchRecordsShift {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count+c > maxFreeRecords {
		return
	}
	p.free[shift] = append(p.free[shift], s[:0])
	p.count += c
}
