package broker

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/broker/log"
)

// topicConfigKind says how a topic config value parses.
type topicConfigKind int

const (
	kindLong topicConfigKind = iota
	kindInt
	kindDouble
	kindBool
	kindEnum
	kindList
)

type topicConfigDef struct {
	kind    topicConfigKind
	min     int64    // for kindLong/kindInt
	choices []string // for kindEnum, kindList
}

// topicConfigDefs are the Kafka topic configs the broker accepts. Names the
// broker does not act on yet are still validated, so a topic created for
// Apache Kafka creates here unchanged.
var topicConfigDefs = map[string]topicConfigDef{
	"cleanup.policy":                          {kind: kindList, choices: []string{"delete", "compact"}},
	"compression.type":                        {kind: kindEnum, choices: []string{"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}},
	"delete.retention.ms":                     {kind: kindLong, min: 0},
	"file.delete.delay.ms":                    {kind: kindLong, min: 0},
	"flush.messages":                          {kind: kindLong, min: 1},
	"flush.ms":                                {kind: kindLong, min: 0},
	"index.interval.bytes":                    {kind: kindInt, min: 0},
	"max.compaction.lag.ms":                   {kind: kindLong, min: 1},
	"max.message.bytes":                       {kind: kindInt, min: 0},
	"message.timestamp.after.max.ms":          {kind: kindLong, min: 0},
	"message.timestamp.before.max.ms":         {kind: kindLong, min: 0},
	"message.timestamp.difference.max.ms":     {kind: kindLong, min: 0},
	"message.timestamp.type":                  {kind: kindEnum, choices: []string{"CreateTime", "LogAppendTime"}},
	"min.cleanable.dirty.ratio":               {kind: kindDouble},
	"min.compaction.lag.ms":                   {kind: kindLong, min: 0},
	"min.insync.replicas":                     {kind: kindInt, min: 1},
	"preallocate":                             {kind: kindBool},
	"retention.bytes":                         {kind: kindLong, min: -1},
	"retention.ms":                            {kind: kindLong, min: -1},
	"segment.bytes":                           {kind: kindInt, min: 14},
	"segment.index.bytes":                     {kind: kindInt, min: 4},
	"segment.jitter.ms":                       {kind: kindLong, min: 0},
	"segment.ms":                              {kind: kindLong, min: 1},
	"unclean.leader.election.enable":          {kind: kindBool},
	"follower.replication.throttled.replicas": {kind: kindList},
	"leader.replication.throttled.replicas":   {kind: kindList},
}

// validateTopicConfig checks one topic config; the error text is what
// INVALID_CONFIG carries back to the client.
func validateTopicConfig(name string, value *string) error {
	def, ok := topicConfigDefs[name]
	if !ok {
		return fmt.Errorf("unknown topic config name: %s", name)
	}
	if value == nil {
		return fmt.Errorf("null value not supported for topic config %s", name)
	}
	v := strings.TrimSpace(*value)
	switch def.kind {
	case kindLong, kindInt:
		bits := 64
		if def.kind == kindInt {
			bits = 32
		}
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil {
			return fmt.Errorf("invalid value %s for configuration %s: not a number", v, name)
		}
		if n < def.min {
			return fmt.Errorf("invalid value %s for configuration %s: value must be at least %d", v, name, def.min)
		}
	case kindDouble:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			return fmt.Errorf("invalid value %s for configuration %s: must be a number in [0,1]", v, name)
		}
	case kindBool:
		if v != "true" && v != "false" {
			return fmt.Errorf("invalid value %s for configuration %s: expected true or false", v, name)
		}
	case kindEnum:
		if !slices.Contains(def.choices, v) {
			return fmt.Errorf("invalid value %s for configuration %s: must be one of %s", v, name, strings.Join(def.choices, ", "))
		}
	case kindList:
		if def.choices == nil {
			return nil
		}
		for _, item := range strings.Split(v, ",") {
			if !slices.Contains(def.choices, strings.TrimSpace(item)) {
				return fmt.Errorf("invalid value %s for configuration %s: must be a list of %s", v, name, strings.Join(def.choices, ", "))
			}
		}
	}
	return nil
}

// logConfig is the log configuration in force for a topic: the broker's
// defaults overridden by the topic's own configs.
func (b *Broker) logConfig(topic map[string]string) (log.Config, error) {
	c := log.Config{
		SegmentBytes:    b.cfg.SegmentBytes,
		SegmentMs:       b.cfg.SegmentMs,
		RetentionMs:     b.cfg.RetentionMs,
		RetentionBytes:  b.cfg.RetentionBytes,
		MaxMessageBytes: b.cfg.MaxMessageBytes,
		FlushMessages:   b.cfg.FlushMessages,
		FlushMs:         b.cfg.FlushMs,
	}
	long := func(name string) (int64, bool, error) {
		v, ok := topic[name]
		if !ok {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("broker: topic config %s=%q: %w", name, v, err)
		}
		return n, true, nil
	}
	ms := func(n int64) time.Duration {
		switch {
		case n < 0:
			return -1
		case n > math.MaxInt64/int64(time.Millisecond):
			// Kafka spells "never" as Long.MAX_VALUE milliseconds,
			// which does not fit a Duration.
			return math.MaxInt64
		}
		return time.Duration(n) * time.Millisecond
	}
	for _, f := range []struct {
		name string
		set  func(int64)
	}{
		{"segment.bytes", func(n int64) { c.SegmentBytes = n }},
		{"segment.ms", func(n int64) { c.SegmentMs = ms(n) }},
		{"retention.ms", func(n int64) { c.RetentionMs = ms(n) }},
		{"retention.bytes", func(n int64) { c.RetentionBytes = n }},
		{"max.message.bytes", func(n int64) { c.MaxMessageBytes = int32(n) }},
		{"flush.messages", func(n int64) { c.FlushMessages = n }},
		{"flush.ms", func(n int64) {
			// Long.MAX_VALUE, Kafka's default, means no timed flush: 0
			// to the log.
			if c.FlushMs = ms(n); c.FlushMs == math.MaxInt64 {
				c.FlushMs = 0
			}
		}},
		{"index.interval.bytes", func(n int64) { c.IndexIntervalBytes = int32(n) }},
	} {
		n, ok, err := long(f.name)
		if err != nil {
			return c, err
		}
		if ok {
			f.set(n)
		}
	}
	c.LogAppendTime = topic["message.timestamp.type"] == "LogAppendTime"
	c.EnsureDefaults()
	return c, c.Validate()
}

// Kafka config sources, as DescribeConfigs and CreateTopics report them.
const (
	configSourceDynamicTopic = 1
	configSourceStaticBroker = 4
	configSourceDefault      = 5
)

type configEntry struct {
	name   string
	value  string
	source int8
}

// topicConfigEntries lists every topic config with the value in force and
// where it comes from, sorted by name.
func (b *Broker) topicConfigEntries(topic map[string]string) []configEntry {
	ms := func(d time.Duration) string {
		if d < 0 {
			return "-1"
		}
		return strconv.FormatInt(d.Milliseconds(), 10)
	}
	flushMs := "9223372036854775807"
	if b.cfg.FlushMs > 0 {
		flushMs = ms(b.cfg.FlushMs)
	}
	// Values the broker configuration sets; the rest are Kafka's defaults.
	fromBroker := map[string]string{
		"segment.bytes":     strconv.FormatInt(b.cfg.SegmentBytes, 10),
		"segment.ms":        ms(b.cfg.SegmentMs),
		"retention.ms":      ms(b.cfg.RetentionMs),
		"retention.bytes":   strconv.FormatInt(b.cfg.RetentionBytes, 10),
		"max.message.bytes": strconv.FormatInt(int64(b.cfg.MaxMessageBytes), 10),
		"flush.messages":    strconv.FormatInt(b.cfg.FlushMessages, 10),
		"flush.ms":          flushMs,
	}
	names := make([]string, 0, len(topicConfigDefs))
	for n := range topicConfigDefs {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]configEntry, 0, len(names))
	for _, n := range names {
		switch v, ok := topic[n]; {
		case ok:
			out = append(out, configEntry{n, v, configSourceDynamicTopic})
		case fromBroker[n] != "" && fromBroker[n] != kafkaTopicDefaults[n]:
			out = append(out, configEntry{n, fromBroker[n], configSourceStaticBroker})
		default:
			out = append(out, configEntry{n, kafkaTopicDefaults[n], configSourceDefault})
		}
	}
	return out
}

// kafkaTopicDefaults are Apache Kafka 4's defaults for the topic configs.
// A value the broker configuration sets is reported as a static broker
// config only where it differs from these (flush.messages does: Runnel
// fsyncs before it acknowledges, Kafka does not).
var kafkaTopicDefaults = map[string]string{
	"segment.bytes":                           "1073741824",
	"segment.ms":                              "604800000",
	"retention.ms":                            "604800000",
	"retention.bytes":                         "-1",
	"max.message.bytes":                       "1048588",
	"flush.messages":                          "9223372036854775807",
	"flush.ms":                                "9223372036854775807",
	"cleanup.policy":                          "delete",
	"compression.type":                        "producer",
	"delete.retention.ms":                     "86400000",
	"file.delete.delay.ms":                    "60000",
	"index.interval.bytes":                    "4096",
	"max.compaction.lag.ms":                   "9223372036854775807",
	"message.timestamp.after.max.ms":          "3600000",
	"message.timestamp.before.max.ms":         "9223372036854775807",
	"message.timestamp.difference.max.ms":     "9223372036854775807",
	"message.timestamp.type":                  "CreateTime",
	"min.cleanable.dirty.ratio":               "0.5",
	"min.compaction.lag.ms":                   "0",
	"min.insync.replicas":                     "1",
	"preallocate":                             "false",
	"segment.index.bytes":                     "10485760",
	"segment.jitter.ms":                       "0",
	"unclean.leader.election.enable":          "false",
	"follower.replication.throttled.replicas": "",
	"leader.replication.throttled.replicas":   "",
}
