//go:build unix && !linux

package log

import "syscall"

// allocPages returns n bytes of anonymous memory outside the Go heap, so
// a large cache neither counts toward the collector's pacing nor is
// scanned by it. The cache keeps what it allocates, for reuse, until it
// is closed; release unmaps it. If the kernel refuses, the memory comes
// from the heap.
func allocPages(n int) (mem []byte, release func()) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return alignedBuffer(n), func() {}
	}
	return b, func() { syscall.Munmap(b) }
}

// populate touches each page of mem, so that it is backed now.
func populate(mem []byte) { touchPages(mem) }
