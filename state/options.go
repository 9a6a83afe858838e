package state

import (
	"fmt"
	"strings"
	"time"
)

// DefaultRetention is the retention of window and session stores whose
// options leave it zero: one day, Kafka Streams' default.
const DefaultRetention = 24 * time.Hour

// minSegmentInterval is the smallest default segment interval, as in Kafka
// Streams.
const minSegmentInterval = time.Minute

// Supplier opens the stores of one task by name. The test driver uses
// memstore's; the runtime uses a pebblestore.Batch, which puts every store of
// a task under that task's key prefix in the instance's Pebble database.
type Supplier interface {
	// KeyValueStore opens the key-value store name.
	KeyValueStore(name string) (KeyValueStore, error)
	// WindowStore opens the window store name.
	WindowStore(name string, opts WindowOptions) (WindowStore, error)
	// SessionStore opens the session store name.
	SessionStore(name string, opts SessionOptions) (SessionStore, error)
}

// EnsureDefaults fills the zero fields of o with their defaults and returns o.
func (o WindowOptions) EnsureDefaults() WindowOptions {
	o.Retention, o.SegmentInterval = retentionDefaults(o.Retention, o.SegmentInterval)
	return o
}

// Validate reports every problem with o at once.
func (o WindowOptions) Validate() error {
	return validateRetention("window", o.Retention, o.SegmentInterval)
}

// String prints the options in force.
func (o WindowOptions) String() string {
	return fmt.Sprintf("retention=%s segment.interval=%s retain.duplicates=%t", o.Retention, o.SegmentInterval, o.RetainDuplicates)
}

// EnsureDefaults fills the zero fields of o with their defaults and returns o.
func (o SessionOptions) EnsureDefaults() SessionOptions {
	o.Retention, o.SegmentInterval = retentionDefaults(o.Retention, o.SegmentInterval)
	return o
}

// Validate reports every problem with o at once.
func (o SessionOptions) Validate() error {
	return validateRetention("session", o.Retention, o.SegmentInterval)
}

// String prints the options in force.
func (o SessionOptions) String() string {
	return fmt.Sprintf("retention=%s segment.interval=%s", o.Retention, o.SegmentInterval)
}

func retentionDefaults(retention, interval time.Duration) (time.Duration, time.Duration) {
	if retention == 0 {
		retention = DefaultRetention
	}
	if interval == 0 {
		interval = max(retention/2, minSegmentInterval)
	}
	return retention, interval
}

func validateRetention(kind string, retention, interval time.Duration) error {
	var problems []string
	if retention < time.Millisecond {
		problems = append(problems, fmt.Sprintf("retention %s is under 1ms", retention))
	}
	if interval < time.Millisecond {
		problems = append(problems, fmt.Sprintf("segment interval %s is under 1ms", interval))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("state: invalid %s store options: %s", kind, strings.Join(problems, "; "))
}

// SegmentID is the segment holding time t (ms) for segments of interval ms:
// floor(t / interval), also for negative t.
func SegmentID(t, interval int64) int64 {
	id := t / interval
	if t%interval != 0 && t < 0 {
		id--
	}
	return id
}

// MinLiveSegment is the oldest segment not yet expired when observed stream
// time is observed: segments below it hold only times before
// observed − retention. Before anything was observed (observed is
// math.MinInt64) every segment is live.
func MinLiveSegment(observed int64, retention, interval time.Duration) int64 {
	r := retention.Milliseconds()
	if observed < minTime+r {
		return SegmentID(minTime, interval.Milliseconds())
	}
	return SegmentID(observed-r, interval.Milliseconds())
}

// minTime is observed stream time before the first write.
const minTime = -1 << 63

// NoObservedTime is a window or session store's observed stream time before
// its first write.
const NoObservedTime int64 = minTime
