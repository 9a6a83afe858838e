package broker

// defaultTailCacheBytes is Config.TailCacheBytes by default: an eighth of
// the machine's memory, as a share of what the page cache would have
// given the same records, or 1 GiB where the memory is not known.
func defaultTailCacheBytes() int64 {
	if m := physicalMemory(); m > 0 {
		return m / 8
	}
	return 1 << 30
}
