package broker

import "runtime/debug"

// memoryHeadroom is what DerivedMemoryLimit allows beyond the request and
// fetch budgets: partition indexes and open segments, groups,
// transactions, metadata and the runtime itself.
const memoryHeadroom = 512 << 20

// DerivedMemoryLimit is the memory limit that fits the budgets in force:
// queued.max.request.bytes plus queued.max.response.bytes plus 512 MiB for
// everything else, 1 GiB with the defaults. The runnel command line sets
// it as Config.MemoryLimit unless told otherwise. Call it after
// EnsureDefaults.
func (c *Config) DerivedMemoryLimit() int64 {
	return c.QueuedMaxRequestBytes + c.QueuedMaxResponseBytes + memoryHeadroom
}

// setMemoryLimit applies Config.MemoryLimit to the Go runtime and returns
// what restores the limit it replaced, or nothing to undo when the limit
// is off.
func setMemoryLimit(limit int64) (restore func()) {
	if limit <= 0 {
		return func() {}
	}
	prev := debug.SetMemoryLimit(limit)
	return func() {
		// Give back the limit found only if no one changed it since.
		if debug.SetMemoryLimit(-1) == limit {
			debug.SetMemoryLimit(prev)
		}
	}
}
