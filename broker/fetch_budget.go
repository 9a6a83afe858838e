package broker

import "sync"

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
	// watchers are fetches waiting for bytes to be given back.
	watchers map[chan<- struct{}]struct{}
}

func newFetchBudget(total, batch int64) *fetchBudget {
	return &fetchBudget{total: total, batch: min(batch, total), watchers: make(map[chan<- struct{}]struct{})}
}

// reserve takes room for a response of up to want bytes: what is free up
// to max(want, one batch), or nothing when less than one batch is free.
// The caller reads at most min(want, reserved) bytes (one batch more only
// when the first is larger than want) and settles the reservation to
// what it read.
func (fb *fetchBudget) reserve(want int64) int64 {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	free := fb.total - fb.used
	if free < fb.batch {
		return 0
	}
	n := min(max(want, fb.batch), free)
	fb.takeLocked(n)
	return n
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
	for w := range fb.watchers {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// watch has wake signalled (without blocking) whenever bytes are given
// back, until unwatch.
func (fb *fetchBudget) watch(wake chan<- struct{}) {
	fb.mu.Lock()
	fb.watchers[wake] = struct{}{}
	fb.mu.Unlock()
}

func (fb *fetchBudget) unwatch(wake chan<- struct{}) {
	fb.mu.Lock()
	delete(fb.watchers, wake)
	fb.mu.Unlock()
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
