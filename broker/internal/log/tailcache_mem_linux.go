package log

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size of a transparent huge page on the platforms Go
// runs Linux on most (x86-64, arm64 with 4 KiB pages).
const hugePage = 2 << 20

// allocPages returns n bytes of anonymous memory outside the Go heap, so
// a large cache neither counts toward the collector's pacing nor is
// scanned by it. The cache keeps what it allocates, for reuse, until it
// is closed. The memory is aligned to huge pages and asked to be backed
// by them, so that touching it the first time costs a fault per 2 MiB
// rather than per 4 KiB; the up to 2 MiB mapped before and after it are
// never touched, and so take no memory. release unmaps it all. If the
// kernel refuses the mapping, the memory comes from the heap, block
// aligned all the same, since write-back writes pages with O_DIRECT.
func allocPages(n int) (mem []byte, release func()) {
	m, err := syscall.Mmap(-1, 0, n+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return alignedBuffer(n), func() {}
	}
	skip := (hugePage - int(uintptr(unsafe.Pointer(&m[0]))%hugePage)) % hugePage
	mem = m[skip : skip+n : skip+n]
	_ = syscall.Madvise(mem, syscall.MADV_HUGEPAGE) // advice: without huge pages all still works
	return mem, func() { syscall.Munmap(m) }
}

// populate has the kernel back mem with memory now, in one call where it
// can (MADV_POPULATE_WRITE, Linux 5.14), by touching each page where it
// cannot.
func populate(mem []byte) {
	if len(mem) == 0 {
		return
	}
	if err := unix.Madvise(mem, unix.MADV_POPULATE_WRITE); err != nil {
		touchPages(mem)
	}
}
