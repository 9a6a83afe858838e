package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/log"
	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// Topic configs and dynamic broker configs.
//
// A topic config's value in force comes from the first of these that sets
// it, as in Kafka:
//
//	DYNAMIC_TOPIC_CONFIG           the topic's own (meta.Topic.Configs)
//	DYNAMIC_BROKER_CONFIG          this broker's dynamic config, by its broker name (log.retention.ms)
//	DYNAMIC_DEFAULT_BROKER_CONFIG  the cluster-wide dynamic default, by its broker name
//	STATIC_BROKER_CONFIG           the broker's Config, where it differs from Kafka's default
//	DEFAULT_CONFIG                 Apache Kafka's default
//
// The dynamic layers live in the Raft metadata (meta.Cluster), so they
// survive restarts and every change reaches open logs through reconcile.
// Only the broker configs that are topic defaults, and the replication
// throttle rates (replication_throttle.go), can be set dynamically; every
// other broker config is static and read-only.

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
	// def is Apache Kafka 4's default.
	def string
	// broker is the broker config that gives the topic config its
	// default (Kafka's synonym), or "" when none does.
	broker string
	// validate, when set, checks a kindList value in place of choices.
	validate func(name, v string) error
}

const longMax = "9223372036854775807"

// topicConfigDefs are the Kafka topic configs the broker accepts. Names the
// broker does not act on yet are still validated, so a topic created for
// Apache Kafka creates here unchanged.
//
// segment.bytes may be as small as 14 bytes (Kafka 4 asks for 1 MiB):
// tests and small deployments roll segments quickly.
var topicConfigDefs = map[string]topicConfigDef{
	"cleanup.policy":                          {kind: kindList, choices: []string{"delete", "compact"}, def: "delete", broker: "log.cleanup.policy"},
	"compression.type":                        {kind: kindEnum, choices: []string{"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}, def: "producer", broker: "compression.type"},
	"delete.retention.ms":                     {kind: kindLong, min: 0, def: "86400000", broker: "log.cleaner.delete.retention.ms"},
	"file.delete.delay.ms":                    {kind: kindLong, min: 0, def: "60000", broker: "log.segment.delete.delay.ms"},
	"flush.messages":                          {kind: kindLong, min: 1, def: longMax, broker: "log.flush.interval.messages"},
	"flush.ms":                                {kind: kindLong, min: 0, def: longMax, broker: "log.flush.interval.ms"},
	"index.interval.bytes":                    {kind: kindInt, min: 0, def: "4096", broker: "log.index.interval.bytes"},
	"max.compaction.lag.ms":                   {kind: kindLong, min: 1, def: longMax, broker: "log.cleaner.max.compaction.lag.ms"},
	"max.message.bytes":                       {kind: kindInt, min: 0, def: "1048588", broker: "message.max.bytes"},
	"message.timestamp.after.max.ms":          {kind: kindLong, min: 0, def: "3600000", broker: "log.message.timestamp.after.max.ms"},
	"message.timestamp.before.max.ms":         {kind: kindLong, min: 0, def: longMax, broker: "log.message.timestamp.before.max.ms"},
	"message.timestamp.difference.max.ms":     {kind: kindLong, min: 0, def: longMax, broker: "log.message.timestamp.difference.max.ms"},
	"message.timestamp.type":                  {kind: kindEnum, choices: []string{"CreateTime", "LogAppendTime"}, def: "CreateTime", broker: "log.message.timestamp.type"},
	"min.cleanable.dirty.ratio":               {kind: kindDouble, def: "0.5", broker: "log.cleaner.min.cleanable.ratio"},
	"min.compaction.lag.ms":                   {kind: kindLong, min: 0, def: "0", broker: "log.cleaner.min.compaction.lag.ms"},
	"min.insync.replicas":                     {kind: kindInt, min: 1, def: "1", broker: "min.insync.replicas"},
	"preallocate":                             {kind: kindBool, def: "false", broker: "log.preallocate"},
	"retention.bytes":                         {kind: kindLong, min: -1, def: "-1", broker: "log.retention.bytes"},
	"retention.ms":                            {kind: kindLong, min: -1, def: "604800000", broker: "log.retention.ms"},
	"segment.bytes":                           {kind: kindInt, min: 14, def: "1073741824", broker: "log.segment.bytes"},
	"segment.index.bytes":                     {kind: kindInt, min: 4, def: "10485760", broker: "log.index.size.max.bytes"},
	"segment.jitter.ms":                       {kind: kindLong, min: 0, def: "0", broker: "log.roll.jitter.ms"},
	"segment.ms":                              {kind: kindLong, min: 1, def: "604800000", broker: "log.roll.ms"},
	"unclean.leader.election.enable":          {kind: kindBool, def: "false", broker: "unclean.leader.election.enable"},
	"follower.replication.throttled.replicas": {kind: kindList, validate: checkThrottledReplicas},
	"leader.replication.throttled.replicas":   {kind: kindList, validate: checkThrottledReplicas},
}

// dynamicBrokerConfigs maps each broker config that may be set
// dynamically to the topic config it is the default of.
var dynamicBrokerConfigs = func() map[string]string {
	m := make(map[string]string)
	for name, def := range topicConfigDefs {
		if def.broker != "" {
			m[def.broker] = name
		}
	}
	return m
}()

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
	return def.check(name, *value)
}

// validateBrokerConfig checks one dynamic broker config: a log default
// or a replication throttle rate (replication_throttle.go).
func validateBrokerConfig(name string, value *string) error {
	def, ok := throttleRateDefs[name]
	if topicName, isDefault := dynamicBrokerConfigs[name]; isDefault {
		def, ok = topicConfigDefs[topicName], true
	}
	if !ok {
		return fmt.Errorf("cannot update broker config %s dynamically: only the log defaults (%s) and the replication throttle rates (%s) can be", name, strings.Join(slices.Sorted(maps.Keys(dynamicBrokerConfigs)), ", "), strings.Join(slices.Sorted(maps.Keys(throttleRateDefs)), ", "))
	}
	if value == nil {
		return fmt.Errorf("null value not supported for broker config %s", name)
	}
	return def.check(name, *value)
}

// check parses v as a value of the config called name.
func (def topicConfigDef) check(name, v string) error {
	v = strings.TrimSpace(v)
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
		if def.validate != nil {
			return def.validate(name, v)
		}
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

// checkTopicConfigs validates a topic's complete set of overrides: each
// name and value, then the configuration they make together with the
// broker's defaults. The error is a *configError.
func (b *Broker) checkTopicConfigs(configs map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		v := configs[name]
		if err := validateTopicConfig(name, &v); err != nil {
			return &configError{err.Error()}
		}
	}
	cl := b.meta.Cluster()
	return b.checkInForce(b.dynamicOverrides(cl.BrokerConfigs[""], cl.BrokerConfigs[b.nodeName()], configs))
}

// checkBrokerConfigs validates the complete set of dynamic configs of a
// broker resource ("" for the cluster default, or this broker's id).
func (b *Broker) checkBrokerConfigs(resource string, configs map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		v := configs[name]
		if err := validateBrokerConfig(name, &v); err != nil {
			return &configError{err.Error()}
		}
	}
	cl := b.meta.Cluster()
	defaults, own := cl.BrokerConfigs[""], cl.BrokerConfigs[b.nodeName()]
	if resource == "" {
		defaults = configs
	} else {
		own = configs
	}
	return b.checkInForce(b.dynamicOverrides(defaults, own, nil))
}

// checkInForce applies Kafka's checks across configs to the overrides of
// the static broker configuration that would be in force.
func (b *Broker) checkInForce(over map[string]string) error {
	inForce := func(name string) int64 {
		v, ok := over[name]
		if !ok {
			v, ok = b.staticBrokerValue(name)
		}
		if !ok {
			v = topicConfigDefs[name].def
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n
	}
	if lo, hi := inForce("min.compaction.lag.ms"), inForce("max.compaction.lag.ms"); lo > hi {
		return &configError{fmt.Sprintf("conflict topic config setting min.compaction.lag.ms (%d) > max.compaction.lag.ms (%d)", lo, hi)}
	}
	if _, err := b.logConfigFrom(over); err != nil {
		return &configError{err.Error()}
	}
	return nil
}

// nodeName is this broker's resource name in broker configs.
func (b *Broker) nodeName() string { return strconv.Itoa(int(b.cfg.NodeID)) }

// dynamicOverrides merges, by topic config name, the dynamic cluster
// defaults, this broker's dynamic configs and a topic's own, later ones
// winning: everything that overrides the static broker configuration.
func (b *Broker) dynamicOverrides(defaults, own, topic map[string]string) map[string]string {
	out := make(map[string]string, len(defaults)+len(own)+len(topic))
	for _, layer := range []map[string]string{defaults, own} {
		for bn, v := range layer {
			if tn, ok := dynamicBrokerConfigs[bn]; ok {
				out[tn] = v
			}
		}
	}
	maps.Copy(out, topic)
	return out
}

// logConfig is the log configuration in force for a topic with the given
// overrides: the broker's static defaults, then its dynamic ones, then the
// topic's.
func (b *Broker) logConfig(topic map[string]string) (log.Config, error) {
	cl := b.meta.Cluster()
	return b.logConfigFrom(b.dynamicOverrides(cl.BrokerConfigs[""], cl.BrokerConfigs[b.nodeName()], topic))
}

// logConfigFrom is the broker's static log defaults overridden by over,
// which is keyed by topic config name.
func (b *Broker) logConfigFrom(over map[string]string) (log.Config, error) {
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
		v, ok := over[name]
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
	c.LogAppendTime = strings.TrimSpace(over["message.timestamp.type"]) == "LogAppendTime"
	if err := compactionConfig(over, &c); err != nil {
		return c, err
	}
	c.EnsureDefaults()
	return c, c.Validate()
}

// Kafka config sources, as DescribeConfigs and CreateTopics report them.
const (
	configSourceDynamicTopic         = 1
	configSourceDynamicBroker        = 2
	configSourceDynamicDefaultBroker = 3
	configSourceStaticBroker         = 4
	configSourceDefault              = 5
)

// configEntry is one config as DescribeConfigs reports it.
type configEntry struct {
	name     string
	value    string
	source   int8
	readOnly bool
	// synonyms are the settings the value could come from, the one in
	// force first, as Kafka lists them.
	synonyms []configEntry
}

// staticBrokerValue is the value the broker's Config gives a topic
// config's default, when it differs from Kafka's.
func (b *Broker) staticBrokerValue(topicName string) (string, bool) {
	ms := func(d time.Duration) string {
		if d < 0 {
			return "-1"
		}
		return strconv.FormatInt(d.Milliseconds(), 10)
	}
	var v string
	switch topicName {
	case "segment.bytes":
		v = strconv.FormatInt(b.cfg.SegmentBytes, 10)
	case "segment.ms":
		v = ms(b.cfg.SegmentMs)
	case "retention.ms":
		v = ms(b.cfg.RetentionMs)
	case "retention.bytes":
		v = strconv.FormatInt(b.cfg.RetentionBytes, 10)
	case "max.message.bytes":
		v = strconv.FormatInt(int64(b.cfg.MaxMessageBytes), 10)
	case "flush.messages":
		// Differs from Kafka's by default: Runnel fsyncs before it
		// acknowledges, Kafka does not.
		v = strconv.FormatInt(b.cfg.FlushMessages, 10)
	case "flush.ms":
		v = longMax
		if b.cfg.FlushMs > 0 {
			v = ms(b.cfg.FlushMs)
		}
	default:
		return "", false
	}
	return v, v != topicConfigDefs[topicName].def
}

// brokerLayers lists, most specific first, the broker-level settings of
// the default of a topic config, under its broker name: this broker's
// dynamic config, the cluster's dynamic default, the static config and
// Kafka's default. It is empty for topic configs no broker config
// defaults.
func (b *Broker) brokerLayers(cl *meta.Cluster, topicName string) []configEntry {
	def := topicConfigDefs[topicName]
	bn := def.broker
	if bn == "" {
		return nil
	}
	var out []configEntry
	if v, ok := cl.BrokerConfigs[b.nodeName()][bn]; ok {
		out = append(out, configEntry{name: bn, value: v, source: configSourceDynamicBroker})
	}
	if v, ok := cl.BrokerConfigs[""][bn]; ok {
		out = append(out, configEntry{name: bn, value: v, source: configSourceDynamicDefaultBroker})
	}
	if v, ok := b.staticBrokerValue(topicName); ok {
		out = append(out, configEntry{name: bn, value: v, source: configSourceStaticBroker})
	}
	return append(out, configEntry{name: bn, value: def.def, source: configSourceDefault})
}

// topicConfigEntries lists every topic config with the value in force,
// where it comes from and its synonyms, sorted by name.
func (b *Broker) topicConfigEntries(topic map[string]string) []configEntry {
	cl := b.meta.Cluster()
	names := slices.Sorted(maps.Keys(topicConfigDefs))
	out := make([]configEntry, 0, len(names))
	for _, n := range names {
		var syn []configEntry
		if v, ok := topic[n]; ok {
			syn = append(syn, configEntry{name: n, value: v, source: configSourceDynamicTopic})
		}
		syn = append(syn, b.brokerLayers(cl, n)...)
		e := configEntry{name: n, value: topicConfigDefs[n].def, source: configSourceDefault, synonyms: syn}
		if len(syn) > 0 {
			e.value, e.source = syn[0].value, syn[0].source
		}
		out = append(out, e)
	}
	return out
}

// topicConfigInForce is the value in force of a topic config for a topic
// with the given overrides.
func (b *Broker) topicConfigInForce(cl *meta.Cluster, topic map[string]string, name string) string {
	if v, ok := topic[name]; ok {
		return v
	}
	if l := b.brokerLayers(cl, name); len(l) > 0 {
		return l[0].value
	}
	return topicConfigDefs[name].def
}

// brokerConfigEntries lists a broker resource's configs: for this broker
// ("<id>") its static configuration, read-only, and the dynamic log
// defaults with their sources; for the cluster default ("") only the
// dynamic defaults that are set, as Kafka does.
func (b *Broker) brokerConfigEntries(resource string) []configEntry {
	cl := b.meta.Cluster()
	var out []configEntry
	if resource == "" {
		for _, bn := range slices.Sorted(maps.Keys(cl.BrokerConfigs[""])) {
			e := configEntry{name: bn, value: cl.BrokerConfigs[""][bn], source: configSourceDynamicDefaultBroker}
			e.synonyms = []configEntry{e}
			out = append(out, e)
		}
		return out
	}
	for _, line := range strings.Split(strings.TrimSpace(b.cfg.String()), "\n") {
		name, value, _ := strings.Cut(line, "=")
		if _, dyn := dynamicBrokerConfigs[name]; dyn {
			continue
		}
		e := configEntry{name: name, value: value, source: configSourceStaticBroker, readOnly: true}
		e.synonyms = []configEntry{e}
		out = append(out, e)
	}
	for bn, tn := range dynamicBrokerConfigs {
		l := b.brokerLayers(cl, tn)
		out = append(out, configEntry{name: bn, value: l[0].value, source: l[0].source, synonyms: l})
	}
	out = append(out, b.throttleRateEntries(cl)...)
	slices.SortFunc(out, func(x, y configEntry) int { return strings.Compare(x.name, y.name) })
	return out
}

// brokerConfigBelow is the value of a dynamic broker config below the
// given resource's own setting: for a broker, the cluster default, static
// or Kafka default; for the cluster default, the static or Kafka default.
func (b *Broker) brokerConfigBelow(cl *meta.Cluster, resource, name string) string {
	tn := dynamicBrokerConfigs[name]
	for _, e := range b.brokerLayers(cl, tn) {
		switch e.source {
		case configSourceDynamicBroker:
			continue
		case configSourceDynamicDefaultBroker:
			if resource == "" {
				continue
			}
		}
		return e.value
	}
	return topicConfigDefs[tn].def
}

// configTarget is a resource whose dynamic configs a request changes: a
// topic, the cluster-wide broker defaults (broker resource ""), or this
// broker (its id).
type configTarget struct {
	b    *Broker
	cl   *meta.Cluster
	typ  kmsg.ConfigResourceType
	name string
}

// def returns the definition of a config the resource may set.
func (t configTarget) def(name string) (topicConfigDef, bool) {
	if t.typ == kmsg.ConfigResourceTypeTopic {
		def, ok := topicConfigDefs[name]
		return def, ok
	}
	if def, ok := throttleRateDefs[name]; ok {
		return def, true
	}
	tn, ok := dynamicBrokerConfigs[name]
	return topicConfigDefs[tn], ok
}

// below is the value in force for name where the resource does not set
// it.
func (t configTarget) below(name string) string {
	if t.typ == kmsg.ConfigResourceTypeTopic {
		return t.b.topicConfigInForce(t.cl, nil, name)
	}
	return t.b.brokerConfigBelow(t.cl, t.name, name)
}

// unknown is the error for a config name the resource cannot have.
func (t configTarget) unknown(name string) error {
	if t.typ == kmsg.ConfigResourceTypeTopic {
		return &configError{"unknown topic config name: " + name}
	}
	v := ""
	return &configError{validateBrokerConfig(name, &v).Error()}
}

// requestError is a request the broker refuses as INVALID_REQUEST.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

// alterConfigs replaces the dynamic configs of a resource with what edit
// makes of the current ones (a copy), once the result validates as a
// whole. With validateOnly it checks and writes nothing. Changes go
// through the Raft metadata; the caller reconciles partitions so they
// take effect.
func (b *Broker) alterConfigs(ctx context.Context, typ kmsg.ConfigResourceType, name string, validateOnly bool, edit func(t configTarget, cur map[string]string) (map[string]string, error)) error {
	var (
		cur    map[string]string
		check  func(map[string]string) error
		update func(context.Context, string, func(map[string]string) (map[string]string, error)) error
	)
	cl := b.meta.Cluster()
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		t := cl.Topics[name]
		if t == nil {
			return fmt.Errorf("%w: %s", meta.ErrUnknownTopic, name)
		}
		cur, check, update = t.Configs, b.checkTopicConfigs, b.meta.UpdateTopicConfigs
	case kmsg.ConfigResourceTypeBroker:
		if name != "" && name != b.nodeName() {
			return &requestError{fmt.Sprintf("this is broker %d: alter broker %s's configs there, or the cluster default (resource name \"\")", b.cfg.NodeID, name)}
		}
		cur = cl.BrokerConfigs[name]
		check = func(c map[string]string) error { return b.checkBrokerConfigs(name, c) }
		update = b.meta.UpdateBrokerConfigs
	default:
		return &requestError{fmt.Sprintf("altering configs of resource type %d is not supported; topics (2) and brokers (4) are", typ)}
	}
	apply := func(cur map[string]string) (map[string]string, error) {
		if cur == nil {
			cur = make(map[string]string)
		}
		next, err := edit(configTarget{b: b, cl: b.meta.Cluster(), typ: typ, name: name}, cur)
		if err != nil {
			return nil, err
		}
		return next, check(next)
	}
	if validateOnly {
		_, err := apply(maps.Clone(cur))
		return err
	}
	return update(ctx, name, apply)
}

// alterError turns an alterConfigs error into the code and message of a
// response resource.
func alterError(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	var ce *configError
	var re *requestError
	code := errorCode(err)
	switch {
	case errors.As(err, &ce):
		code = kerr.InvalidConfig.Code
	case errors.As(err, &re):
		code = kerr.InvalidRequest.Code
	}
	return code, errorMessage(err)
}

// splitList splits a list config's value into its items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
