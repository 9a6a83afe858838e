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
// Slices are kept by capacity, in powers of two, one sync.Pool each.
type fetchRecords struct {
	byCap [maxFetchRecordsShift + 1]sync.Pool // of *[]kgo.Record
}

// maxFetchRecordsShift bounds the pooled slices at 1<<16 records; larger
// batches are left to the garbage collector.
const maxFetchRecordsShift = 16

var _ kgo.PoolRecords = (*fetchRecords)(nil)

// fetchRecordPool is the workers' fetchRecords: sync.Pools are shared
// across goroutines anyway.
var fetchRecordPool fetchRecords

// GetRecords implements kgo.PoolRecords.
func (p *fetchRecords) GetRecords(n int) []kgo.Record {
	shift := bits.Len(uint(max(n, 1) - 1)) // the smallest 1<<shift >= n
	if shift > maxFetchRecordsShift {
		return make([]kgo.Record, 0, n)
	}
	if s, ok := p.byCap[shift].Get().(*[]kgo.Record); ok {
		return (*s)[:0]
	}
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
	s = s[:0]
	p.byCap[shift].Put(&s)
}
