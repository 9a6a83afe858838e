package broker

// defaultTailCacheBytes is Config.TailCacheBytes by default: an eighth of
// the memory the broker may use (physicalMemory: the machine's, or a
// container's limit), as a share of what the page cache would have given
// the same records, or 1 GiB where the memory is not known.
func defaultTailCacheBytes() int64 {
	if m := physicalMemory(); m > 0 {
		return m / 8
	}
	return 1 << 30
}
