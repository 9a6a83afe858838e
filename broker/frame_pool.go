package broker

import (
	"math/bits"
	"sync"
)

// Produce frames are recycled through size-classed pools shared by every
// connection. A producer's requests are large (a batch of up to 1 MB per
// partition: 5-6 MB for six partitions) and vary in size, so a buffer kept
// per connection is either too small for the next frame or pins megabytes
// for the connection's life; a fresh buffer per request costs its zeroing
// and, on a VM, the faults of fresh pages, on every byte produced. Pooled
// buffers are freed by the garbage collector when unused (sync.Pool).
//
// Classes have four sizes per doubling (5, 6, 7 and 8 times a power of
// two), so a buffer is at most a quarter larger than its frame; frames
// under minPooledFrame are allocated as they come.
const minPooledFrame = 4 << 10

var framePools [4 * 32]sync.Pool // of *[]byte, by frameClass

// frameClass returns the pool of a frame of size bytes and the capacity
// of its buffers: the smallest class size at least size.
func frameClass(size int) (int, int) {
	m := uint(max(size, minPooledFrame) - 1)
	k := bits.Len(m) - 3 // m>>k is in [4, 7]
	j := int(m>>k) + 1   // in [5, 8]
	return 4*k + j - 5, j << k
}

// getFrame returns a buffer of len size for a Produce frame, to be given
// back with putFrame once nothing refers to it.
func getFrame(size int) []byte {
	if size < minPooledFrame {
		return make([]byte, size)
	}
	class, capacity := frameClass(size)
	if p, ok := framePools[class].Get().(*[]byte); ok {
		return (*p)[:size]
	}
	return make([]byte, size, capacity)
}

// putFrame gives back a buffer from getFrame. Others (not of a class's
// capacity) are left to the garbage collector.
func putFrame(buf []byte) {
	if cap(buf) < minPooledFrame {
		return
	}
	class, capacity := frameClass(cap(buf))
	if capacity != cap(buf) {
		return
	}
	buf = buf[:0]
	framePools[class].Put(&buf)
}
