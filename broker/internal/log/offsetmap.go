package log

// offsetMap is the cleaner's key → latest offset map of a log's dirty
// section. Keys are held exactly (no hash collisions can drop a live
// record); memory is bounded by an estimate of bytes held, checked by the
// builder at segment boundaries.
type offsetMap struct {
	m     map[string]int64
	bytes int64
	limit int64
}

// offsetMapEntryOverhead estimates a map entry's memory beyond its key:
// the string header, the int64 and the map's own per-entry cost.
const offsetMapEntryOverhead = 48

func newOffsetMap(limit int64) *offsetMap {
	return &offsetMap{m: make(map[string]int64), limit: limit}
}

// put records that key's newest record so far is at off.
func (om *offsetMap) put(key []byte, off int64) {
	if old, ok := om.m[string(key)]; ok {
		if off > old {
			om.m[string(key)] = off
		}
		return
	}
	om.m[string(key)] = off
	om.bytes += int64(len(key)) + offsetMapEntryOverhead
}

// get returns the offset of key's newest record in the dirty section.
func (om *offsetMap) get(key []byte) (int64, bool) {
	off, ok := om.m[string(key)]
	return off, ok
}

// full reports whether the map has reached its memory budget.
func (om *offsetMap) full() bool { return om.bytes >= om.limit }

func (om *offsetMap) len() int { return len(om.m) }
