package cache

// EntryOverhead is entryOverhead, for tests that size a cache in entries.
const EntryOverhead = entryOverhead
