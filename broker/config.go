package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Config holds the broker's engine knobs. The zero value is not usable; call
// EnsureDefaults, then Validate. Field comments give the default and the
// Apache Kafka broker property each corresponds to.
type Config struct {
	// NodeID is this broker's id (node.id). Default 0, like any other
	// non-negative id.
	NodeID int32
	// DataDir holds partition logs and the metadata Raft state (log.dirs).
	// Required.
	DataDir string
	// Listen is the Kafka protocol listener address (listeners). Port 0
	// picks a free port; Broker.Addr reports the one chosen.
	// Default "127.0.0.1:9092".
	Listen string
	// AdvertisedHost is the host clients are told to connect to
	// (advertised.listeners). Default: the listener's host, or 127.0.0.1
	// when the listener binds all interfaces.
	AdvertisedHost string
	// MetricsListen, when set, serves Prometheus metrics at /metrics on
	// this address. Default: none.
	MetricsListen string

	// AutoCreateTopics creates a topic on first Metadata or Produce
	// reference (auto.create.topics.enable). Default false: a Runnel
	// program should say which topics it wants.
	AutoCreateTopics bool
	// NumPartitions is the partition count of auto-created topics and of
	// CreateTopics requests that ask for the default (num.partitions).
	// Default 1.
	NumPartitions int32

	// Log defaults, overridable per topic by the Kafka topic config of the
	// same name.

	// SegmentBytes: log.segment.bytes, default 1 GiB.
	SegmentBytes int64
	// SegmentMs: log.roll.ms, default 7 days.
	SegmentMs time.Duration
	// RetentionMs: log.retention.ms, default 7 days; negative means
	// unlimited.
	RetentionMs time.Duration
	// RetentionBytes: log.retention.bytes, default -1 (unlimited).
	RetentionBytes int64
	// MaxMessageBytes: message.max.bytes, default 1048588.
	MaxMessageBytes int32
	// FlushMessages: log.flush.interval.messages. Default 1: every
	// acknowledged batch is fsynced first (group commit). Larger values
	// acknowledge before the fsync.
	FlushMessages int64
	// FlushMs: log.flush.interval.ms. Default 0 (only FlushMessages
	// decides).
	FlushMs time.Duration
	// RetentionCheckInterval: log.retention.check.interval.ms, default 5
	// minutes.
	RetentionCheckInterval time.Duration

	// Logger receives the broker's structured log. Default: discard.
	Logger *slog.Logger
	// Now is the broker's clock. Default time.Now. Tests inject one.
	Now func() time.Time
}

// EnsureDefaults fills every zero field with its default.
func (c *Config) EnsureDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9092"
	}
	if c.NumPartitions == 0 {
		c.NumPartitions = 1
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = 1 << 30
	}
	if c.SegmentMs == 0 {
		c.SegmentMs = 7 * 24 * time.Hour
	}
	if c.RetentionMs == 0 {
		c.RetentionMs = 7 * 24 * time.Hour
	}
	if c.RetentionBytes == 0 {
		c.RetentionBytes = -1
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 1048588
	}
	if c.FlushMessages == 0 {
		c.FlushMessages = 1
	}
	if c.RetentionCheckInterval == 0 {
		c.RetentionCheckInterval = 5 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("broker: "+format, args...)) }
	if c.NodeID < 0 {
		bad("node id %d is negative", c.NodeID)
	}
	if c.DataDir == "" {
		bad("data dir is required")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen address %q: %v", c.Listen, err)
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			bad("metrics listen address %q: %v", c.MetricsListen, err)
		}
	}
	if c.NumPartitions < 1 {
		bad("num.partitions %d must be at least 1", c.NumPartitions)
	}
	if c.SegmentBytes < 14 {
		bad("segment.bytes %d is too small", c.SegmentBytes)
	}
	if c.SegmentMs < time.Millisecond {
		bad("segment.ms %v must be at least 1ms", c.SegmentMs)
	}
	if c.MaxMessageBytes < 0 {
		bad("max.message.bytes %d is negative", c.MaxMessageBytes)
	}
	if c.FlushMessages < 1 {
		bad("flush.messages %d must be at least 1", c.FlushMessages)
	}
	if c.FlushMs < 0 {
		bad("flush.ms %v is negative", c.FlushMs)
	}
	return errors.Join(errs...)
}

// String prints the values in force, one per line.
func (c *Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "node.id=%d\n", c.NodeID)
	fmt.Fprintf(&b, "log.dirs=%s\n", c.DataDir)
	fmt.Fprintf(&b, "listeners=%s\n", c.Listen)
	fmt.Fprintf(&b, "advertised.host=%s\n", c.AdvertisedHost)
	fmt.Fprintf(&b, "metrics.listen=%s\n", c.MetricsListen)
	fmt.Fprintf(&b, "auto.create.topics.enable=%t\n", c.AutoCreateTopics)
	fmt.Fprintf(&b, "num.partitions=%d\n", c.NumPartitions)
	fmt.Fprintf(&b, "log.segment.bytes=%d\n", c.SegmentBytes)
	fmt.Fprintf(&b, "log.roll.ms=%d\n", c.SegmentMs.Milliseconds())
	fmt.Fprintf(&b, "log.retention.ms=%d\n", c.RetentionMs.Milliseconds())
	fmt.Fprintf(&b, "log.retention.bytes=%d\n", c.RetentionBytes)
	fmt.Fprintf(&b, "message.max.bytes=%d\n", c.MaxMessageBytes)
	fmt.Fprintf(&b, "log.flush.interval.messages=%d\n", c.FlushMessages)
	fmt.Fprintf(&b, "log.flush.interval.ms=%d\n", c.FlushMs.Milliseconds())
	fmt.Fprintf(&b, "log.retention.check.interval.ms=%d\n", c.RetentionCheckInterval.Milliseconds())
	return b.String()
}
