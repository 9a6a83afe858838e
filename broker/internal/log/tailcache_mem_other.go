//go:build !unix

package log

// allocPages returns n bytes from the heap, which the collector takes
// back once released.
func allocPages(n int) (mem []byte, release func()) { return alignedBuffer(n), func() {} }

// populate touches each page of mem, so that it is backed now.
func populate(mem []byte) { touchPages(mem) }
