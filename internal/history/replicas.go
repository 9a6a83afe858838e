package history

import "fmt"

// Replica is one replica's copy of a partition, read from its own log
// (for example through a test hook or a Fetch to that broker).
type Replica struct {
	Broker int32
	// LogStart and LogEnd bound the replica's log: [LogStart, LogEnd).
	LogStart, LogEnd int64
	Records          []Record
}

// CompareReplicas reports the offsets below hw, the partition's high
// watermark, where two replicas disagree: a record one holds and the
// other does not, or two different records. Only offsets both replicas
// hold in their logs are compared, so a follower that is behind (out of
// the ISR) is not divergent for lacking the tail; a caller that knows a
// replica is in the ISR checks that its LogEnd reaches hw.
func CompareReplicas(topic string, partition int32, hw int64, replicas []Replica) []Anomaly {
	var out []Anomaly
	reported := map[int64]bool{}
	held := make([]map[int64]Record, len(replicas))
	for i, r := range replicas {
		held[i] = map[int64]Record{}
		for _, rec := range r.Records {
			held[i][rec.Offset] = rec
		}
	}
	for i := range replicas {
		for j := i + 1; j < len(replicas); j++ {
			a, b := replicas[i], replicas[j]
			lo, hi := max(a.LogStart, b.LogStart), min(hw, a.LogEnd, b.LogEnd)
			check := func(off int64) {
				if reported[off] {
					return
				}
				ra, inA := held[i][off]
				rb, inB := held[j][off]
				var why string
				switch {
				case inA && !inB:
					why = fmt.Sprintf("broker %d holds %q, broker %d nothing", a.Broker, ra.Value, b.Broker)
				case inB && !inA:
					why = fmt.Sprintf("broker %d holds %q, broker %d nothing", b.Broker, rb.Value, a.Broker)
				case ra != rb:
					why = fmt.Sprintf("broker %d holds %q/%q, broker %d %q/%q", a.Broker, ra.Key, ra.Value, b.Broker, rb.Key, rb.Value)
				default:
					return
				}
				reported[off] = true
				v := ra.Value
				if !inA {
					v = rb.Value
				}
				out = append(out, Anomaly{Divergent, topic, partition, off, v, why + fmt.Sprintf(" (below high watermark %d)", hw)})
			}
			// Walk only the offsets either replica holds: logs are
			// sparse where control records or compaction left gaps.
			for off := range held[i] {
				if off >= lo && off < hi {
					check(off)
				}
			}
			for off := range held[j] {
				if off >= lo && off < hi {
					check(off)
				}
			}
		}
	}
	sortAnomalies(out)
	return out
}
