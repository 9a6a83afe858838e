package log

import (
	"runtime"
	"time"
)

// Prefaulting.
//
// Growing with its appends (tailcache_grow.go), the cache pays for its
// memory while clients wait: the first budget's worth of bytes after a
// start each take new memory, which on the virtual machines the
// benchmarks run on costs 1-3 s of CPU per GB (the host backs guest
// memory lazily and takes freed memory back), on the same CPUs that
// serve the requests. A broker that has the machine to itself can take
// the whole budget ahead instead, while it is idle: at start, before
// clients come, and in the pauses of their load. Prefault starts a
// goroutine that maps and faults in a slab at a time while the broker is
// idle, and waits while it is not, so that it never adds more than one
// slab to a busy broker's work; the grower keeps the appends' reserve
// meanwhile as before. Idle is, over the last look (prefaultIdle, or the
// time one slab took): no page taken by an append, no byte read through
// the cache, and the process's other threads using under a fifth of a
// CPU. Each was measured to be needed: a consumer reading 1 GB of 100 B
// records from the cache takes no pages, and serves them at a sixth of a
// CPU, yet the prefault competing with it cost it a quarter of its
// records/s; the CPU covers the rest of a broker's work (the files,
// the groups, other clients).
// Measured on a many-clients produce of 1 KiB records at 200,000
// records/s on a host that had taken back the guest's free memory: p99
// 37 ms with the cache growing with the appends, 13-18 ms with it taken
// ahead (bench/README.md).

// prefaultIdle is how long the prefaulter waits before it looks again
// whether the broker is idle.
const prefaultIdle = 50 * time.Millisecond

// prefaultBusyShare is the share of a CPU the process's other threads
// may use, over a look, for the broker to count as idle: one in five
// (an idle broker uses under 1%; one serving a fetching consumer, or
// scraped for its metrics every few milliseconds, more).
const prefaultBusyShare = 5

// Prefault has the cache take and fault in its whole budget ahead of
// need, while the broker is idle; see the package's prefaulting.
// The memory is kept until Close, as a cache that grew to its budget
// keeps it. Calls after the first do nothing.
func (tc *TailCache) Prefault() {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.prefaulting || tc.closed || tc.pages >= tc.maxPages {
		return
	}
	tc.prefaulting = true
	tc.stop = make(chan struct{})
	tc.grower.Add(1)
	go tc.prefault(tc.activityLocked())
}

// activityLocked counts what the cache was used for: the pages the
// appends took and the bytes read through it. REQUIRES: tc.mu held.
func (tc *TailCache) activityLocked() uint64 {
	return tc.takes + uint64(tc.hits.Load()+tc.misses.Load())
}

// prefault maps a slab whenever the broker was idle since it last
// looked, until the budget is reached or the cache closed; seen is the
// activity it last saw. It maps only while the grower does not, so that
// the two never together map past the budget (alloc counts one mapping
// in flight).
func (tc *TailCache) prefault(seen uint64) {
	defer tc.grower.Done()
	// The meter tells this goroutine's CPU from the others' by its thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var meter cpuMeter
	meter.others()
	last := time.Now()
	othersIdle := tc.othersIdle
	if othersIdle == nil {
		othersIdle = func(elapsed time.Duration) bool {
			used, ok := meter.others()
			return !ok || used <= elapsed/prefaultBusyShare
		}
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	newSlab := mapSlab
	if tc.newSlab != nil {
		newSlab = tc.newSlab
	}
	for {
		now := time.Now()
		quiet := othersIdle(now.Sub(last))
		last = now
		tc.mu.Lock()
		if tc.closed || tc.pages >= tc.maxPages {
			tc.mu.Unlock()
			return
		}
		act := tc.activityLocked()
		idle := quiet && act == seen
		seen = act
		if idle && tc.growing == 0 {
			n := min(tcSlab, tc.maxPages-tc.pages)
			tc.growing = n
			tc.mu.Unlock()
			mem, release := newSlab(n * tcPageSize)
			tc.mu.Lock()
			tc.growing = 0
			tc.grown.Broadcast()
			if tc.closed {
				tc.mu.Unlock()
				release()
				return
			}
			tc.addSlabLocked(mem, release, n)
			tc.growAheadLocked() // the grower waited while this mapped
			tc.mu.Unlock()
			continue
		}
		tc.mu.Unlock()
		tick := tc.idleTick
		if tick == nil {
			if timer == nil {
				timer = time.NewTimer(prefaultIdle)
			} else {
				timer.Reset(prefaultIdle)
			}
			tick = timer.C
		}
		select {
		case <-tick:
		case <-tc.stop:
		}
	}
}
