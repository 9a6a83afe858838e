// Package offsetspec resolves where a consumer group's offsets are to be
// moved — the earliest or latest offset, an offset, a time, or a duration
// before now — into one offset per partition, as Kafka's
// kafka-consumer-groups --reset-offsets and
// kafka-streams-application-reset do. `runnel groups reset-offsets`,
// `runnel reset` and runnel.PlanReset all resolve their targets here.
package offsetspec

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Spec says where offsets move. The zero Spec is Earliest.
type Spec struct {
	kind   kind
	offset int64
	at     time.Time
}

type kind int

const (
	earliest kind = iota
	latest
	offset
	atTime
)

// Earliest is each partition's start offset.
func Earliest() Spec { return Spec{kind: earliest} }

// Latest is each partition's end offset (the high watermark).
func Latest() Spec { return Spec{kind: latest} }

// Offset is offset n, clamped to each partition's [start, end].
func Offset(n int64) Spec { return Spec{kind: offset, offset: n} }

// Time is the first offset whose record's timestamp is at or after t, or
// the end offset of a partition with none.
func Time(t time.Time) Spec { return Spec{kind: atTime, at: t} }

// Duration is Time(now - d): the first record of the last d.
func Duration(d time.Duration, now time.Time) Spec { return Time(now.Add(-d)) }

// Partition names one partition.
type Partition struct {
	Topic     string
	Partition int32
}

func (tp Partition) String() string {
	return fmt.Sprintf("topic %s partition %d", tp.Topic, tp.Partition)
}

// Resolved is one partition's new offset, with a note when the spec could
// not be followed to the letter (an offset out of range, no record late
// enough).
type Resolved struct {
	Partition
	Offset int64
	Note   string // "" when none
}

// noteTime is how notes print a time: UTC, to the millisecond ListOffsets
// works in.
const noteTime = "2006-01-02T15:04:05.000Z07:00"

// Resolve lists the offsets spec names for parts, in their order. Every
// partition must exist.
func Resolve(ctx context.Context, adm *kadm.Client, spec Spec, parts []Partition) ([]Resolved, error) {
	var topics []string
	seen := map[string]bool{}
	for _, p := range parts {
		if !seen[p.Topic] {
			seen[p.Topic] = true
			topics = append(topics, p.Topic)
		}
	}
	list := func(fn func(context.Context, ...string) (kadm.ListedOffsets, error), what string) (kadm.ListedOffsets, error) {
		listed, err := fn(ctx, topics...)
		if err != nil {
			return nil, fmt.Errorf("list %s offsets: %w", what, err)
		}
		for _, tp := range parts {
			o, ok := listed.Lookup(tp.Topic, tp.Partition)
			switch {
			case !ok:
				return nil, fmt.Errorf("list %s offsets: %s missing from the response", what, tp)
			case o.Err != nil:
				return nil, fmt.Errorf("list %s offsets: %s: %w", what, tp, o.Err)
			}
		}
		return listed, nil
	}
	out := make([]Resolved, len(parts))
	for i, tp := range parts {
		out[i].Partition = tp
	}
	switch spec.kind {
	case earliest, latest:
		fn, what := adm.ListStartOffsets, "start"
		if spec.kind == latest {
			fn, what = adm.ListEndOffsets, "end"
		}
		listed, err := list(fn, what)
		if err != nil {
			return nil, err
		}
		for i, tp := range parts {
			o, _ := listed.Lookup(tp.Topic, tp.Partition)
			out[i].Offset = o.Offset
		}
	case offset:
		starts, err := list(adm.ListStartOffsets, "start")
		if err != nil {
			return nil, err
		}
		ends, err := list(adm.ListEndOffsets, "end")
		if err != nil {
			return nil, err
		}
		for i, tp := range parts {
			start, _ := starts.Lookup(tp.Topic, tp.Partition)
			end, _ := ends.Lookup(tp.Topic, tp.Partition)
			o := spec.offset
			switch {
			case o < start.Offset:
				o = start.Offset
				out[i].Note = fmt.Sprintf("offset %d is before the start offset %d; using %d", spec.offset, o, o)
			case o > end.Offset:
				o = end.Offset
				out[i].Note = fmt.Sprintf("offset %d is past the end offset %d; using %d", spec.offset, o, o)
			}
			out[i].Offset = o
		}
	case atTime:
		// A partition with no record at or after the time gets its end
		// offset: kadm asks again for those, and their timestamp is -1.
		ms := spec.at.UnixMilli()
		listed, err := list(func(ctx context.Context, topics ...string) (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, ms, topics...)
		}, "by time")
		if err != nil {
			return nil, err
		}
		for i, tp := range parts {
			o, _ := listed.Lookup(tp.Topic, tp.Partition)
			out[i].Offset = o.Offset
			if o.Timestamp < 0 {
				out[i].Note = fmt.Sprintf("no record at or after %s; using the end offset %d", spec.at.UTC().Format(noteTime), o.Offset)
			}
		}
	}
	return out, nil
}

// LocalDatetime is the zone-less form ParseDatetime accepts, read in the
// local time zone (Kafka's tools take the same, with optional millis).
const LocalDatetime = "2006-01-02T15:04:05"

// ParseDatetime reads an RFC 3339 time, a local time without zone, or
// epoch milliseconds.
func ParseDatetime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 {
			return time.Time{}, errors.New("negative epoch milliseconds")
		}
		return time.UnixMilli(ms), nil
	}
	// Both layouts also take fractional seconds when parsing.
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(LocalDatetime, s, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want RFC 3339 (2006-01-02T15:04:05Z or +07:00), local %s, or epoch milliseconds", LocalDatetime)
}
