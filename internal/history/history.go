// Package history records what a fault test sent to and read from a Kafka
// cluster, and checks the record against the guarantees the cluster gives.
//
// A test feeds a Recorder (usually through Load, a franz-go load
// generator, and ReadAll, a read-back of whole partitions), takes its
// History, and calls Check. The report lists:
//
//   - Lost: an acknowledged send absent from the final read of its
//     partition.
//   - Duplicate: a send read more than once in the final read (a failure
//     only for idempotent producers).
//   - Inconsistent: one offset read with two different values, an
//     acknowledged send read at another offset than acknowledged, or a
//     record read that was never sent.
//   - Gone: a record read once, then missing from a later read that
//     covered its offset.
//
// CompareReplicas checks that the replicas of a partition hold the same
// records below its high watermark; ReadReplica reads one broker's copy
// for it. Values must be unique per send (Load makes them so); the checks
// do not handle transactions or compaction.
package history

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Send is one produce attempt and its outcome.
type Send struct {
	Topic string
	// Partition is where the record went; -1 when a failed send never
	// got one.
	Partition int32
	Key       string
	Value     string
	// Offset is the acknowledged offset; -1 when unknown (acks=0, or
	// the send failed).
	Offset int64
	// Err is nil when the send was acknowledged. A failed send may or
	// may not be in the log: the checker requires nothing of it.
	Err error
}

// Acked reports whether the cluster acknowledged the send.
func (s Send) Acked() bool { return s.Err == nil }

// Record is one record as read from a partition.
type Record struct {
	Offset int64
	Key    string
	Value  string
}

// Scan is one sequential read of a partition: a reader that asked for
// Start and received every record of [Start, End) there was, in order.
type Scan struct {
	// Seq orders scans by when they began.
	Seq       int
	Topic     string
	Partition int32
	Start     int64
	// End is exclusive: offsets in [Start, End) that are not in Records
	// held no record when the scan passed them.
	End     int64
	Records []Record
	// ToEnd says the scan read up to the partition's high watermark, so
	// End is the log's end as the reader saw it: a record read earlier
	// at or above End is gone. The read-back of a run sets it.
	ToEnd bool
}

// History is everything a run sent and read.
type History struct {
	Sends []Send
	Scans []Scan
}

// Recorder collects a History from many goroutines.
type Recorder struct {
	mu    sync.Mutex // guards the following
	sends []Send
	scans []*ScanLog
}

// Send records one send's outcome.
func (r *Recorder) Send(s Send) {
	r.mu.Lock()
	r.sends = append(r.sends, s)
	r.mu.Unlock()
}

// BeginScan starts recording a read of topic/partition from offset start.
func (r *Recorder) BeginScan(topic string, partition int32, start int64) *ScanLog {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := &ScanLog{r: r, scan: Scan{Seq: len(r.scans), Topic: topic, Partition: partition, Start: start, End: start}}
	r.scans = append(r.scans, l)
	return l
}

// History returns a copy of what was recorded so far.
func (r *Recorder) History() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := History{Sends: append([]Send(nil), r.sends...)}
	for _, l := range r.scans {
		s := l.scan
		s.Records = append([]Record(nil), s.Records...)
		h.Scans = append(h.Scans, s)
	}
	return h
}

// ScanLog is a scan being recorded; its reader adds records in offset
// order.
type ScanLog struct {
	r    *Recorder
	scan Scan // guarded by r.mu
}

// Add records rec, read after every record added before it. It returns
// false, recording nothing, when rec's offset is not past the last one:
// the reader went back and must begin a new scan.
func (l *ScanLog) Add(rec Record) bool {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if rec.Offset < l.scan.End {
		return false
	}
	l.scan.Records = append(l.scan.Records, rec)
	l.scan.End = rec.Offset + 1
	return true
}

// Next is the offset after the last record added (or the start).
func (l *ScanLog) Next() int64 {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	return l.scan.End
}

// Finish marks the scan as having read up to hw, the partition's high
// watermark: offsets in [Next, hw) held no record.
func (l *ScanLog) Finish(hw int64) {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if hw > l.scan.End {
		l.scan.End = hw
	}
	l.scan.ToEnd = true
}

// Kind names a kind of anomaly.
type Kind string

// The anomalies Check and CompareReplicas report.
const (
	Lost         Kind = "lost"
	Duplicate    Kind = "duplicate"
	Inconsistent Kind = "inconsistent"
	Gone         Kind = "gone"
	Divergent    Kind = "divergent"
)

// Anomaly is one violation found in a history.
type Anomaly struct {
	Kind      Kind
	Topic     string
	Partition int32
	Offset    int64
	Value     string
	Detail    string
}

func (a Anomaly) String() string {
	return fmt.Sprintf("%s %s/%d@%d %q: %s", a.Kind, a.Topic, a.Partition, a.Offset, a.Value, a.Detail)
}

// Options says which guarantees a run claims.
type Options struct {
	// Idempotent makes duplicates a failure: the producers were
	// idempotent, so a retried batch must be written once.
	Idempotent bool
}

// Report is Check's result.
type Report struct {
	Options
	// Acked, Failed count sends by outcome.
	Acked, Failed int
	// Read counts the records of the final reads.
	Read int
	// AckedAndRead counts the acknowledged sends found as acknowledged.
	AckedAndRead int

	Lost         []Anomaly
	Duplicates   []Anomaly
	Inconsistent []Anomaly
	Gone         []Anomaly
}

// Anomalies returns every anomaly that fails the run.
func (r Report) Anomalies() []Anomaly {
	var out []Anomaly
	out = append(out, r.Lost...)
	if r.Idempotent {
		out = append(out, r.Duplicates...)
	}
	out = append(out, r.Inconsistent...)
	out = append(out, r.Gone...)
	return out
}

// Err is nil when the run kept its guarantees, and otherwise names the
// first few anomalies.
func (r Report) Err() error {
	a := r.Anomalies()
	if len(a) == 0 {
		return nil
	}
	const show = 10
	msg := fmt.Sprintf("history: %s", r.Summary())
	for i, x := range a {
		if i == show {
			msg += fmt.Sprintf("\n  ... and %d more", len(a)-show)
			break
		}
		msg += "\n  " + x.String()
	}
	return errors.New(msg)
}

// Summary is one line of counts.
func (r Report) Summary() string {
	return fmt.Sprintf("%d acked (%d read back), %d failed sends, %d records read; %d lost, %d duplicate, %d inconsistent, %d gone",
		r.Acked, r.AckedAndRead, r.Failed, r.Read, len(r.Lost), len(r.Duplicates), len(r.Inconsistent), len(r.Gone))
}

type partKey struct {
	topic     string
	partition int32
}

// Check runs every check on h. The final read of a partition is its last
// scan (by Seq) that read to the end; acknowledged sends to a partition
// without one are lost.
func Check(h History, opt Options) Report {
	rep := Report{Options: opt}
	scans := append([]Scan(nil), h.Scans...)
	sort.SliceStable(scans, func(i, j int) bool { return scans[i].Seq < scans[j].Seq })

	final := map[partKey]*Scan{}
	for i := range scans {
		if scans[i].ToEnd {
			final[partKey{scans[i].Topic, scans[i].Partition}] = &scans[i]
		}
	}
	sent := map[string]bool{}
	for _, s := range h.Sends {
		sent[s.Value] = true
	}

	rep.checkFinal(h.Sends, final, sent)
	rep.Inconsistent = append(rep.Inconsistent, inconsistentOffsets(scans)...)
	rep.Gone = goneRecords(scans)
	return rep
}

// checkFinal compares the sends with the final reads: lost, duplicate,
// misplaced and never-sent records.
func (rep *Report) checkFinal(sends []Send, final map[partKey]*Scan, sent map[string]bool) {
	where := map[partKey]map[string][]int64{} // value -> offsets, per final read
	for k, sc := range final {
		m := map[string][]int64{}
		for _, r := range sc.Records {
			m[r.Value] = append(m[r.Value], r.Offset)
			if !sent[r.Value] {
				rep.Inconsistent = append(rep.Inconsistent, Anomaly{Inconsistent, k.topic, k.partition, r.Offset, r.Value, "read but never sent"})
			}
		}
		where[k] = m
		rep.Read += len(sc.Records)
		for v, offs := range m {
			if len(offs) > 1 && sent[v] {
				rep.Duplicates = append(rep.Duplicates, Anomaly{Duplicate, k.topic, k.partition, offs[1], v, fmt.Sprintf("written %d times, at offsets %v", len(offs), offs)})
			}
		}
	}
	for _, s := range sends {
		if !s.Acked() {
			rep.Failed++
			continue
		}
		rep.Acked++
		k := partKey{s.Topic, s.Partition}
		if final[k] == nil {
			rep.Lost = append(rep.Lost, Anomaly{Lost, s.Topic, s.Partition, s.Offset, s.Value, "acknowledged; the partition was never read to its end"})
			continue
		}
		offs := where[k][s.Value]
		switch {
		case len(offs) == 0:
			rep.Lost = append(rep.Lost, Anomaly{Lost, s.Topic, s.Partition, s.Offset, s.Value, "acknowledged, absent from the final read"})
		case s.Offset >= 0 && !slices.Contains(offs, s.Offset):
			rep.Inconsistent = append(rep.Inconsistent, Anomaly{Inconsistent, s.Topic, s.Partition, s.Offset, s.Value, fmt.Sprintf("acknowledged at offset %d, read at %v", s.Offset, offs)})
		default:
			rep.AckedAndRead++
		}
	}
	sortAnomalies(rep.Lost)
	sortAnomalies(rep.Duplicates)
}

// inconsistentOffsets finds offsets read with different values.
func inconsistentOffsets(scans []Scan) []Anomaly {
	type at struct {
		partKey
		offset int64
	}
	type seen struct {
		value string
		seq   int
	}
	first := map[at]seen{}
	reported := map[at]bool{}
	var out []Anomaly
	for _, sc := range scans {
		for _, r := range sc.Records {
			k := at{partKey{sc.Topic, sc.Partition}, r.Offset}
			f, ok := first[k]
			if !ok {
				first[k] = seen{r.Value, sc.Seq}
				continue
			}
			if f.value != r.Value && !reported[k] {
				reported[k] = true
				out = append(out, Anomaly{Inconsistent, sc.Topic, sc.Partition, r.Offset, r.Value,
					fmt.Sprintf("scan %d read %q here, scan %d read %q", f.seq, f.value, sc.Seq, r.Value)})
			}
		}
	}
	sortAnomalies(out)
	return out
}

// goneRecords finds records read by one scan and missing from a later
// scan that covered their offset, or that read to an end below them.
func goneRecords(scans []Scan) []Anomaly {
	byPart := map[partKey][]int{}
	for i, sc := range scans {
		k := partKey{sc.Topic, sc.Partition}
		byPart[k] = append(byPart[k], i)
	}
	var out []Anomaly
	for _, idx := range byPart {
		held := make([]map[int64]bool, len(idx))
		for n, i := range idx {
			held[n] = map[int64]bool{}
			for _, r := range scans[i].Records {
				held[n][r.Offset] = true
			}
		}
		reported := map[int64]bool{}
		for n, i := range idx {
			for _, r := range scans[i].Records {
				if reported[r.Offset] {
					continue
				}
				for m := n + 1; m < len(idx); m++ {
					later := scans[idx[m]]
					if later.Start > r.Offset {
						continue
					}
					var why string
					switch {
					case r.Offset < later.End && !held[m][r.Offset]:
						why = fmt.Sprintf("read by scan %d, skipped by scan %d which read [%d, %d)", scans[i].Seq, later.Seq, later.Start, later.End)
					case r.Offset >= later.End && later.ToEnd:
						why = fmt.Sprintf("read by scan %d, above the end %d that scan %d read to", scans[i].Seq, later.End, later.Seq)
					default:
						continue
					}
					reported[r.Offset] = true
					out = append(out, Anomaly{Gone, later.Topic, later.Partition, r.Offset, r.Value, why})
					break
				}
			}
		}
	}
	sortAnomalies(out)
	return out
}

func sortAnomalies(a []Anomaly) {
	sort.Slice(a, func(i, j int) bool {
		if a[i].Topic != a[j].Topic {
			return a[i].Topic < a[j].Topic
		}
		if a[i].Partition != a[j].Partition {
			return a[i].Partition < a[j].Partition
		}
		return a[i].Offset < a[j].Offset
	})
}
