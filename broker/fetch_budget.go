package broker

import (
	"slices"
	"sync"
)

// fetchBudget is the broker-wide budget for the record bytes of Fetch
// responses read from the log but not yet written to their clients
// (queued.max.response.bytes). Kafka has no such limit. Runnel sends
// records from the segment files with sendfile (fetch_zerocopy.go), but a
// response still pins what it will send until it is written: the file
// regions (a descriptor each, and their page cache), or the records read
// into memory where it copies (connections without sendfile). Without a
// bound many consumers reading slowly, each with a large fetch.max.bytes,
// would pin as much as they like. Regions are charged like copied bytes.
//
// A fetch never waits for the budget in a queue the way a request reader
// does (byteBudget): it takes what is free, up to what it asked for, and
// answers with that many bytes; with less than one batch's worth free it
// reads nothing and long-polls for the budget as it would for data, then
// answers empty at its MaxWait. A consumer therefore always gets at least
// one whole batch once one batch's worth is free (KIP-74), and a fetch is
// never stuck behind slow readers for longer than its wait.
//
// Fetches that wait for the budget are served in the order they began to
// wait: bytes given back wake the longest waiter only, and no other fetch
// may take them before it. Without that order the waiters race for each
// release, and a consumer among many slow readers with large
// fetch.max.bytes loses nearly every race (seen under CPU contention: 60
// of 163 records in two minutes).
type fetchBudget struct {
	total int64
	// batch is the room a fetch needs to read anything: the largest
	// batch produce accepts (message.max.bytes), so the first batch,
	// which is returned whatever the limits, fits what was reserved.
	batch int64

	mu sync.Mutex // guards the following
	// used is what reserved and settled fetches hold. Invariant:
	// used <= total, except that a batch larger than message.max.bytes
	// (written under a larger topic max.message.bytes, or before the
	// limit) overdraws by its excess for as long as it is held.
	used int64
	// peak is the largest used seen, for tests and metrics.
	peak int64
	// waiting are the fetches waiting for room, oldest first, each by
	// its wake channel; only the first may take room while any waits.
	waiting []chan<- struct{}
}

func newFetchBudget(total, batch int64) *fetchBudget {
	return &fetchBudget{total: total, batch: min(batch, total)}
}

// reserve takes room for a response of up to want bytes: what is free up
// to max(want, one batch), or nothing when less than one batch is free.
// The caller reads at most min(want, reserved) bytes (one batch more only
// when the first is larger than want) and settles the reservation to
// what it read.
func (fb *fetchBudget) reserve(want int64) int64 { return fb.reserveFor(want, nil) }

// reserveFor is reserve for the fetch whose wake channel is wake: while
// fetches wait for room, only the longest waiting one gets any, and
// leaves the queue with it.
func (fb *fetchBudget) reserveFor(want int64, wake chan<- struct{}) int64 {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if !fb.mayTakeLocked(wake) {
		return 0
	}
	n := min(max(want, fb.batch), fb.total-fb.used)
	fb.takeLocked(n)
	if len(fb.waiting) > 0 {
		fb.waiting = fb.waiting[1:] // it was the first: served
		fb.wakeFirstLocked()        // the next may find room left
	}
	return n
}

// mayTakeLocked reports whether the fetch of wake may take room now:
// there is a batch's worth, and no other fetch waits before it.
// REQUIRES: fb.mu held.
func (fb *fetchBudget) mayTakeLocked(wake chan<- struct{}) bool {
	if fb.total-fb.used < fb.batch {
		return false
	}
	return len(fb.waiting) == 0 || fb.waiting[0] == wake
}

// settle turns a reservation of reserved bytes into a charge of used
// bytes, giving back the difference (or taking the excess of a first
// batch larger than message.max.bytes), and returns the charge.
func (fb *fetchBudget) settle(reserved, used int64) int64 {
	if used == reserved {
		return used
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if used > reserved {
		fb.takeLocked(used - reserved)
	} else {
		fb.releaseLocked(reserved - used)
	}
	return used
}

// release gives back a charge once its response is written (or dropped).
func (fb *fetchBudget) release(n int64) {
	if n == 0 {
		return
	}
	fb.mu.Lock()
	fb.releaseLocked(n)
	fb.mu.Unlock()
}

// REQUIRES: fb.mu held.
func (fb *fetchBudget) takeLocked(n int64) {
	fb.used += n
	fb.peak = max(fb.peak, fb.used)
}

// REQUIRES: fb.mu held.
func (fb *fetchBudget) releaseLocked(n int64) {
	fb.used -= n
	fb.wakeFirstLocked()
}

// wakeFirstLocked signals the longest waiting fetch (without blocking)
// when there is room for it.
// REQUIRES: fb.mu held.
func (fb *fetchBudget) wakeFirstLocked() {
	if len(fb.waiting) == 0 || fb.total-fb.used < fb.batch {
		return
	}
	select {
	case fb.waiting[0] <- struct{}{}:
	default:
	}
}

// watch queues the fetch of wake behind those already waiting for room;
// wake is signalled (without blocking) when its turn comes and there is
// room, until it takes room (reserveFor) or leaves (unwatch). Watching
// twice keeps its place.
func (fb *fetchBudget) watch(wake chan<- struct{}) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if !slices.Contains(fb.waiting, wake) {
		fb.waiting = append(fb.waiting, wake)
	}
	if fb.waiting[0] == wake {
		fb.wakeFirstLocked() // room given back before it queued
	}
}

// unwatch takes the fetch of wake out of the queue, if it is there.
func (fb *fetchBudget) unwatch(wake chan<- struct{}) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if i := slices.Index(fb.waiting, wake); i >= 0 {
		fb.waiting = slices.Delete(fb.waiting, i, i+1)
		if i == 0 {
			fb.wakeFirstLocked()
		}
	}
}

// hasRoom reports whether a reserve would now get room for a batch.
func (fb *fetchBudget) hasRoom() bool {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.total-fb.used >= fb.batch
}

// inUse and maxInUse report the bytes held now and at most so far.
func (fb *fetchBudget) inUse() int64 {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.used
}

func (fb *fetchBudget) maxInUse() int64 {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.peak
}
