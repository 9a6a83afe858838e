package log

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"
)

// Config holds a log's knobs, one per Kafka topic config. Call
// EnsureDefaults, then Validate. Field comments give the default and the
// topic config each corresponds to.
type Config struct {
	// SegmentBytes is segment.bytes: a non-empty active segment is rolled
	// before an append that would take it past this size. Default 1 GiB;
	// at least 14 and at most math.MaxInt32, as in Kafka.
	SegmentBytes int64
	// SegmentMs is segment.ms: a non-empty active segment is rolled before
	// an append once this long has passed, by the log's clock, since its
	// first append. Default 7 days.
	SegmentMs time.Duration
	// RetentionMs is retention.ms: EnforceRetention deletes closed
	// segments whose largest timestamp is older than this. Negative means
	// unlimited. Zero is Kafka's zero (delete as soon as closed), so
	// EnsureDefaults leaves it alone: set it.
	RetentionMs time.Duration
	// RetentionBytes is retention.bytes: EnforceRetention deletes the
	// oldest closed segments while the log stays at least this large
	// without them. -1 means unlimited. Zero is Kafka's zero, so
	// EnsureDefaults leaves it alone: set it.
	RetentionBytes int64
	// MaxMessageBytes is max.message.bytes: the largest batch accepted,
	// counting its 12-byte offset and length prefix, as Kafka counts it.
	// Default 1048588.
	MaxMessageBytes int32
	// FlushMessages is flush.messages. 1 (the default) means the caller
	// makes acknowledged data durable with WaitFlushed. Larger values make
	// the log fsync by itself once this many records are unflushed.
	FlushMessages int64
	// FlushMs is flush.ms: when positive, the log fsyncs unflushed data at
	// least this often. Zero or negative means off (Kafka's default,
	// Long.MAX_VALUE, overflows a Duration to a negative value).
	FlushMs time.Duration
	// IndexIntervalBytes is index.interval.bytes: the bytes of log between
	// offset index entries. Default 4096.
	IndexIntervalBytes int32
	// LogAppendTime is message.timestamp.type=LogAppendTime: the log
	// stamps every appended batch with the append time.
	LogAppendTime bool

	// CleanupPolicy is cleanup.policy: CleanupDelete (the default),
	// CleanupCompact, or both. A compacted log refuses records without a
	// key and is cleaned by Clean; retention by time and size applies only
	// with CleanupDelete.
	CleanupPolicy CleanupPolicy
	// DeleteRetention is delete.retention.ms: how long a tombstone (and a
	// transaction marker with nothing left to mark) survives after the
	// clean that first kept it. Zero is Kafka's zero (removed by the next
	// clean), so EnsureDefaults leaves it alone: set it (Kafka's default is
	// DefaultDeleteRetention).
	DeleteRetention time.Duration
	// MinCompactionLag is min.compaction.lag.ms: a segment holding a
	// record younger than this is not cleaned. Default 0.
	MinCompactionLag time.Duration
	// MaxCompactionLag is max.compaction.lag.ms: a log whose oldest
	// uncleaned record is older than this is cleaned whatever its dirty
	// ratio, and its active segment is rolled once this old. Default
	// (zero): never.
	MaxCompactionLag time.Duration
	// MinCleanableDirtyRatio is min.cleanable.dirty.ratio: a log is
	// cleaned once its dirty bytes are at least this share of its
	// cleanable bytes. Zero is Kafka's zero (clean whenever anything is
	// dirty), so EnsureDefaults leaves it alone: set it (Kafka's default
	// is DefaultMinCleanableDirtyRatio).
	MinCleanableDirtyRatio float64
}

// CleanupPolicy is a set of cleanup.policy values.
type CleanupPolicy uint8

// Cleanup policies; CleanupDelete|CleanupCompact is "compact,delete".
const (
	CleanupDelete  CleanupPolicy = 1 << iota // retention by time and size
	CleanupCompact                           // keep the newest record per key
)

// Compact reports whether the policy includes compact.
func (p CleanupPolicy) Compact() bool { return p&CleanupCompact != 0 }

// Delete reports whether the policy includes delete.
func (p CleanupPolicy) Delete() bool { return p&CleanupDelete != 0 }

// String spells the policy as Kafka's cleanup.policy does.
func (p CleanupPolicy) String() string {
	switch p {
	case CleanupDelete:
		return "delete"
	case CleanupCompact:
		return "compact"
	case CleanupDelete | CleanupCompact:
		return "compact,delete"
	}
	return fmt.Sprintf("CleanupPolicy(%d)", uint8(p))
}

// Defaults, as Apache Kafka's.
const (
	DefaultSegmentBytes       = 1 << 30
	DefaultSegmentMs          = 7 * 24 * time.Hour
	DefaultMaxMessageBytes    = 1048588
	DefaultIndexIntervalBytes = 4096

	DefaultDeleteRetention        = 24 * time.Hour
	DefaultMinCleanableDirtyRatio = 0.5
)

// EnsureDefaults fills the zero fields that have a default: SegmentBytes,
// SegmentMs, MaxMessageBytes, FlushMessages, IndexIntervalBytes,
// CleanupPolicy (delete), MaxCompactionLag (never). A negative FlushMs
// becomes 0 (off).
func (c *Config) EnsureDefaults() {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.SegmentMs == 0 {
		c.SegmentMs = DefaultSegmentMs
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.FlushMessages == 0 {
		c.FlushMessages = 1
	}
	if c.FlushMs < 0 {
		c.FlushMs = 0
	}
	if c.IndexIntervalBytes == 0 {
		c.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if c.CleanupPolicy == 0 {
		c.CleanupPolicy = CleanupDelete
	}
	if c.MaxCompactionLag == 0 {
		c.MaxCompactionLag = math.MaxInt64
	}
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("log: "+format, args...)) }
	if c.SegmentBytes < 14 || c.SegmentBytes > math.MaxInt32 {
		bad("segment.bytes %d not in [14, %d]", c.SegmentBytes, math.MaxInt32)
	}
	if c.SegmentMs <= 0 {
		bad("segment.ms %v must be positive", c.SegmentMs)
	}
	if c.RetentionBytes < -1 {
		bad("retention.bytes %d must be at least -1", c.RetentionBytes)
	}
	if c.MaxMessageBytes <= 0 {
		bad("max.message.bytes %d must be positive", c.MaxMessageBytes)
	}
	if c.FlushMessages < 1 {
		bad("flush.messages %d must be at least 1", c.FlushMessages)
	}
	if c.FlushMs < 0 {
		bad("flush.ms %v must not be negative", c.FlushMs)
	}
	if c.IndexIntervalBytes < 0 {
		bad("index.interval.bytes %d must not be negative", c.IndexIntervalBytes)
	}
	if c.CleanupPolicy == 0 || c.CleanupPolicy&^(CleanupDelete|CleanupCompact) != 0 {
		bad("cleanup.policy %d unknown", uint8(c.CleanupPolicy))
	}
	if c.DeleteRetention < 0 {
		bad("delete.retention.ms %v must not be negative", c.DeleteRetention)
	}
	if c.MinCompactionLag < 0 {
		bad("min.compaction.lag.ms %v must not be negative", c.MinCompactionLag)
	}
	if c.MaxCompactionLag <= 0 {
		bad("max.compaction.lag.ms %v must be positive", c.MaxCompactionLag)
	}
	if !(c.MinCleanableDirtyRatio >= 0 && c.MinCleanableDirtyRatio <= 1) {
		bad("min.cleanable.dirty.ratio %v not in [0, 1]", c.MinCleanableDirtyRatio)
	}
	return errors.Join(errs...)
}

// String prints the values in force, one Kafka topic config a line.
func (c *Config) String() string {
	var b strings.Builder
	ms := func(d time.Duration) int64 {
		if d < 0 {
			return -1
		}
		return d.Milliseconds()
	}
	fmt.Fprintf(&b, "segment.bytes=%d\n", c.SegmentBytes)
	fmt.Fprintf(&b, "segment.ms=%d\n", ms(c.SegmentMs))
	fmt.Fprintf(&b, "retention.ms=%d\n", ms(c.RetentionMs))
	fmt.Fprintf(&b, "retention.bytes=%d\n", c.RetentionBytes)
	fmt.Fprintf(&b, "max.message.bytes=%d\n", c.MaxMessageBytes)
	fmt.Fprintf(&b, "flush.messages=%d\n", c.FlushMessages)
	fmt.Fprintf(&b, "flush.ms=%d\n", ms(c.FlushMs))
	fmt.Fprintf(&b, "index.interval.bytes=%d\n", c.IndexIntervalBytes)
	tt := "CreateTime"
	if c.LogAppendTime {
		tt = "LogAppendTime"
	}
	fmt.Fprintf(&b, "message.timestamp.type=%s\n", tt)
	fmt.Fprintf(&b, "cleanup.policy=%s\n", c.CleanupPolicy)
	fmt.Fprintf(&b, "delete.retention.ms=%d\n", ms(c.DeleteRetention))
	fmt.Fprintf(&b, "min.compaction.lag.ms=%d\n", ms(c.MinCompactionLag))
	fmt.Fprintf(&b, "max.compaction.lag.ms=%d\n", ms(c.MaxCompactionLag))
	fmt.Fprintf(&b, "min.cleanable.dirty.ratio=%v\n", c.MinCleanableDirtyRatio)
	return b.String()
}

// Option configures Open.
type Option func(*options)

type options struct {
	now    func() time.Time
	logger *slog.Logger
}

// WithClock sets the clock used for segment.ms, LogAppendTime and segment
// modification times. Default time.Now. Tests inject one.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets where the log reports recovery and background errors.
// Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }
