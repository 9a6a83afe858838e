package log

// The tail cache grows ahead of its appenders. Memory new to the process
// costs a page fault and the kernel's zeroing the first time it is
// touched, and on a virtual machine whose host backs guest memory lazily
// (and takes freed memory back, as free page reporting does) far more:
// measured at about 2 s of CPU per GB on the machines the benchmarks run
// on, against a small fraction of that for memory the host already
// backs. Paid by an append, it is paid under the log's append lock,
// where every produce to the partition waits behind it. So a goroutine
// the cache owns maps the next slabs and faults them in while the cache
// is below its budget, keeping a reserve of free pages ahead of the
// appends. An append that finds none (the grower fell behind) maps a
// slab itself: recycling instead would keep the cache below its budget
// for as long as the grower lags, and send readers to the disk for what
// it could have kept (a consumer reading 2 GB just written from the
// start, measured at a third of the records/s).

// tcReserve is how many free pages the grower keeps ready while the
// cache is below its budget.
const tcReserve = 2 * tcSlab

// growAheadLocked starts the grower when the free pages run short of the
// reserve and the budget allows more. REQUIRES: tc.mu held.
func (tc *TailCache) growAheadLocked() {
	if tc.growing > 0 || tc.closed || len(tc.free) >= tcReserve || tc.pages >= tc.maxPages {
		return
	}
	tc.growing = min(tcSlab, tc.maxPages-tc.pages)
	tc.grower.Add(1)
	go tc.grow()
}

// grow maps and faults in a slab at a time until the reserve is full, the
// budget reached or the cache closed. A slab mapped after Close is given
// back at once.
func (tc *TailCache) grow() {
	defer tc.grower.Done()
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for {
		n := tc.growing
		tc.mu.Unlock()
		newSlab := mapSlab
		if tc.newSlab != nil {
			newSlab = tc.newSlab
		}
		mem, release := newSlab(n * tcPageSize)
		tc.mu.Lock()
		if tc.closed {
			release()
			tc.growing = 0
			tc.grown.Broadcast()
			return
		}
		tc.addSlabLocked(mem, release, n)
		tc.grown.Broadcast()
		if len(tc.free) >= tcReserve || tc.pages >= tc.maxPages {
			tc.growing = 0
			return
		}
		tc.growing = min(tcSlab, tc.maxPages-tc.pages)
	}
}

// mapSlab maps bytes of memory for the cache and has the kernel back it
// now.
func mapSlab(bytes int) (mem []byte, release func()) {
	mem, release = allocPages(bytes)
	populate(mem)
	return mem, release
}

// touchPages writes a byte of each 4 KiB page of mem, so that the kernel
// backs it with memory now.
func touchPages(mem []byte) {
	for i := 0; i < len(mem); i += 4096 {
		mem[i] = 0
	}
}
