// Package windowref computes, plainly and apart from package stream, what
// windowed counts and sums followed by Suppress(UntilWindowCloses) must
// emit, for Runnel's randomized equivalence tests: the streamtest driver
// and the App run a topology over generated events, and their final
// results must equal these. Each function takes the events of one
// partition in the order a task processes them (stream time is per task)
// and returns the final result per window, keyed "key@start" (time and
// sliding windows) or "key@start-end" (sessions). Times are in
// milliseconds.
package windowref

import (
	"fmt"
	"math/rand/v2"
)

// Event is an input record: a key, a timestamp and a value.
type Event struct {
	Key string
	TS  int64
	V   int64
}

// Events generates n events over six keys from seed: mostly in order,
// with jumps of event time far beyond the retention of windows of size
// and grace (a backlog within one commit), records out of order within
// grace, and late records.
func Events(seed uint64, n int, size, grace int64) []Event {
	rng := rand.New(rand.NewPCG(seed, 19))
	var evs []Event
	now := int64(0)
	for range n {
		ts := now
		switch k := rng.IntN(20); {
		case k == 0: // a jump far past every window's retention
			now += 20_000 + rng.Int64N(40_000)
			ts = now
		case k < 4: // out of order, within grace
			ts = max(0, now-rng.Int64N(grace))
		case k < 6: // late
			ts = max(0, now-size-grace-rng.Int64N(3*size))
		default:
			now += rng.Int64N(400)
			ts = now
		}
		if rng.IntN(4) == 0 {
			// On a coarse grid, records meet the windows' bounds exactly.
			ts -= ts % 500
		}
		evs = append(evs, Event{fmt.Sprint("k", rng.IntN(6)), ts, 1 + rng.Int64N(9)})
	}
	return evs
}

// Partition is the partition of key among n by Kafka's default
// partitioner (murmur2 of the key bytes).
func Partition(key []byte, n int) int {
	const m, r = uint32(0x5bd1e995), 24
	h := uint32(0x9747b28c) ^ uint32(len(key))
	i := 0
	for ; i+4 <= len(key); i += 4 {
		k := uint32(key[i]) | uint32(key[i+1])<<8 | uint32(key[i+2])<<16 | uint32(key[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h = h*m ^ k
	}
	switch len(key) - i {
	case 3:
		h ^= uint32(key[i+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(key[i+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(key[i])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int((h & 0x7fffffff) % uint32(n))
}

// ByPartition splits evs among n partitions by key, keeping their order.
func ByPartition(evs []Event, n int) [][]Event {
	out := make([][]Event, n)
	for _, e := range evs {
		p := Partition([]byte(e.Key), n)
		out[p] = append(out[p], e)
	}
	return out
}

// TimeWindows computes the final results of a count in time windows
// (size, advance, grace) followed by Suppress(UntilWindowCloses). Stream
// time is the largest timestamp seen; a record counts in a window while
// the window's end is after stream time − grace; Suppress's time is the
// largest timestamp of a record counted, and a window is final once that
// reaches its end + grace.
func TimeWindows(evs []Event, size, advance, grace int64) map[string]int64 {
	counts := map[string]int64{}
	ends := map[string]int64{}
	streamTime, suppressTime := int64(-1), int64(-1)
	for _, e := range evs {
		streamTime = max(streamTime, e.TS)
		for start := e.TS / advance * advance; start >= 0 && start+size > e.TS; start -= advance {
			if start+size <= streamTime-grace {
				continue // closed
			}
			w := fmt.Sprintf("%s@%d", e.Key, start)
			counts[w]++
			ends[w] = start + size
			suppressTime = max(suppressTime, e.TS)
		}
	}
	for w, end := range ends {
		if end+grace > suppressTime {
			delete(counts, w)
		}
	}
	return counts
}

// session is one session of SuppressedSessions.
type session struct {
	start, end int64
	sum        int64
}

// SuppressedSessions computes what a session sum followed by
// Suppress(UntilWindowCloses) emits, the session store retaining sessions
// for gap + grace (the default). A record merges the sessions within gap
// of it that the store still holds, unless the merged session would end
// before stream time − grace − gap (then it is late and dropped). The
// store holds a session while its end is after the latest session end put
// into it minus the retention (Kafka Streams' stores hide the sessions
// that expired, whatever their segments). Suppress's time is the largest
// end of a session updated, and a session is emitted, once, when that
// passes its end + 2 × gap + grace.
func SuppressedSessions(evs []Event, gap, grace int64) map[string]int64 {
	live := map[string][]session{}
	emitted := map[string]int64{}
	observed, suppressTime := int64(-1), int64(-1)
	retention := gap + grace
	for _, e := range evs {
		// The store has expired the sessions ending a retention before
		// the latest end put into it, the stream time before e.
		expired := observed - retention
		observed = max(observed, e.TS)
		merged := session{e.TS, e.TS, e.V}
		var keep []session
		for _, s := range live[e.Key] {
			// A session gone from the store is found by no record (its
			// final result is Suppress's business).
			if s.end > expired && s.end >= e.TS-gap && s.start <= e.TS+gap {
				merged.start, merged.end, merged.sum = min(merged.start, s.start), max(merged.end, s.end), merged.sum+s.sum
			} else {
				keep = append(keep, s)
			}
		}
		if merged.end < observed-grace-gap {
			continue // late
		}
		live[e.Key] = append(keep, merged)
		suppressTime = max(suppressTime, merged.end)
		for k, ss := range live {
			for _, s := range ss {
				w := fmt.Sprintf("%s@%d-%d", k, s.start, s.end)
				if _, done := emitted[w]; !done && s.end+2*gap+grace < suppressTime {
					emitted[w] = s.sum
				}
			}
		}
	}
	return emitted
}

// SlidingWindows computes the final results of a count in sliding
// windows (Kafka Streams' SlidingWindows: size is the time difference,
// both ends inclusive) followed by Suppress(UntilWindowCloses).
//
// The windows of a key are, for each of its records at t, [t-size, t] and,
// when a later record of the key falls within it, [t+1, t+1+size]: every
// distinct set of records a window of the size can hold. Windows start at 0
// at the earliest, as in Kafka Streams: a record earlier than size has the
// left window [0, size]. A window counts
// the records in it. Stream time is the largest timestamp seen; a window
// is closed once its end is before stream time − grace, and a closed
// window keeps its count; a record all of whose windows are closed (t +
// size before stream time − grace) is dropped. Every update of a window
// is stamped with the window's latest record, Suppress's time is the
// largest such stamp, and a window is final once that passes its end +
// grace.
func SlidingWindows(evs []Event, size, grace int64) map[string]int64 {
	recs := map[string][]int64{} // the admitted records' timestamps, per key
	counts := map[string]int64{}
	ends := map[string]int64{}
	observed, suppressTime := int64(-1), int64(-1)
	for _, e := range evs {
		observed = max(observed, e.TS)
		closeTime := observed - grace
		if e.TS+size < closeTime {
			continue // late
		}
		recs[e.Key] = append(recs[e.Key], e.TS)
		rs := recs[e.Key]
		for start := range slidingStarts(rs, size) {
			end := start + size
			if end < closeTime {
				continue // closed: its count stays
			}
			n, latest := int64(0), int64(-1)
			for _, ts := range rs {
				if ts >= start && ts <= end {
					n, latest = n+1, max(latest, ts)
				}
			}
			w := fmt.Sprintf("%s@%d", e.Key, start)
			counts[w], ends[w] = n, end
			// Updated now: the windows holding the record, and the one
			// right after it.
			if (start <= e.TS && e.TS <= end) || start == e.TS+1 {
				suppressTime = max(suppressTime, latest)
			}
		}
	}
	for w, end := range ends {
		if end+grace >= suppressTime {
			delete(counts, w)
		}
	}
	return counts
}

// slidingStarts returns the starts of the sliding windows of size that the
// records at timestamps rs make.
func slidingStarts(rs []int64, size int64) map[int64]bool {
	starts := map[int64]bool{}
	for _, t := range rs {
		// A window cannot start before 0 (Kafka Streams): an early
		// record's left window is [0, size].
		starts[max(0, t-size)] = true
		for _, u := range rs {
			if u > t && u <= t+1+size {
				starts[t+1] = true
				break
			}
		}
	}
	return starts
}
