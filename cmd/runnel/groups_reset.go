package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

const resetSynopsis = `groups reset-offsets --group GROUP --topic TOPIC[:P,P...] ...
                     (--to-earliest | --to-latest | --to-offset N | --to-datetime TS) [--dry-run]`

// localDatetime is the zone-less form --to-datetime accepts, read in the
// local time zone (Kafka's tool takes the same, with optional millis).
const localDatetime = "2006-01-02T15:04:05"

// noteTime is how notes print a --to-datetime time: UTC, to the
// millisecond ListOffsets works in.
const noteTime = "2006-01-02T15:04:05.000Z07:00"

// groupsResetOffsets commits new offsets for an empty group, like
// kafka-consumer-groups --reset-offsets --execute. A group with members
// would overwrite them with its next commit, so it is refused, as Kafka's
// tool does.
func groupsResetOffsets(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "groups reset-offsets", resetSynopsis, true)
	group := fs.String("group", "", "the group whose offsets to reset (required)")
	var topicSpecs listFlag
	fs.Var(&topicSpecs, "topic", "`TOPIC` (every partition) or TOPIC:P,P... to reset, repeatable (required)")
	fs.Bool("to-earliest", false, "reset to each partition's start offset")
	fs.Bool("to-latest", false, "reset to each partition's end offset")
	toOffset := fs.Int64("to-offset", 0, "reset to offset `N`, clamped to [start, end] of each partition")
	toDatetime := fs.String("to-datetime", "", "reset to the first record at or after `TS` (RFC 3339, local "+localDatetime+", or epoch milliseconds)")
	dryRun := fs.Bool("dry-run", false, "print the new offsets without committing them")
	timeout := adminFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos); err != nil {
		return err
	}
	var modes []string
	fs.Visit(func(f *flag.Flag) {
		// --to-earliest=false chooses nothing.
		if strings.HasPrefix(f.Name, "to-") && f.Value.String() != "false" {
			modes = append(modes, "--"+f.Name)
		}
	})
	switch {
	case *group == "":
		return usagef(fs, "missing --group")
	case len(topicSpecs) == 0:
		return usagef(fs, "missing --topic")
	case len(modes) == 0:
		return usagef(fs, "missing --to-earliest, --to-latest, --to-offset or --to-datetime")
	case len(modes) > 1:
		return usagef(fs, "%s exclude each other", strings.Join(modes, " and "))
	}
	mode := modes[0]
	if mode == "--to-offset" && *toOffset < 0 {
		return usagef(fs, "--to-offset %d is negative", *toOffset)
	}
	var at time.Time
	if mode == "--to-datetime" {
		if at, err = parseDatetime(*toDatetime); err != nil {
			return usagef(fs, "--to-datetime %q: %v", *toDatetime, err)
		}
	}
	want, err := parseTopicSpecs(topicSpecs)
	if err != nil {
		return usagef(fs, "%v", err)
	}

	adm, ctx, done, err := openAdmin(ctx, g, *timeout)
	if err != nil {
		return err
	}
	defer done()

	if err := checkGroupEmpty(ctx, adm, *group); err != nil {
		return err
	}
	parts, err := resolvePartitions(ctx, adm, want)
	if err != nil {
		return err
	}
	topics := slices.Sorted(maps.Keys(want))

	// The offsets to reset to, and a note for every partition where
	// the request could not be followed to the letter.
	target := map[string]map[int32]int64{}
	var notes []string
	set := func(t string, p int32, o int64) {
		if target[t] == nil {
			target[t] = map[int32]int64{}
		}
		target[t][p] = o
	}
	switch mode {
	case "--to-earliest", "--to-latest":
		list, what := adm.ListStartOffsets, "start"
		if mode == "--to-latest" {
			list, what = adm.ListEndOffsets, "end"
		}
		listed, err := listOffsets(ctx, list, what, topics, parts)
		if err != nil {
			return err
		}
		for _, tp := range parts {
			o, _ := listed.Lookup(tp.topic, tp.partition)
			set(tp.topic, tp.partition, o.Offset)
		}
	case "--to-offset":
		starts, err := listOffsets(ctx, adm.ListStartOffsets, "start", topics, parts)
		if err != nil {
			return err
		}
		ends, err := listOffsets(ctx, adm.ListEndOffsets, "end", topics, parts)
		if err != nil {
			return err
		}
		for _, tp := range parts {
			start, _ := starts.Lookup(tp.topic, tp.partition)
			end, _ := ends.Lookup(tp.topic, tp.partition)
			o := *toOffset
			switch {
			case o < start.Offset:
				o = start.Offset
				notes = append(notes, fmt.Sprintf("%s: offset %d is before the start offset %d; using %d", tp, *toOffset, o, o))
			case o > end.Offset:
				o = end.Offset
				notes = append(notes, fmt.Sprintf("%s: offset %d is past the end offset %d; using %d", tp, *toOffset, o, o))
			}
			set(tp.topic, tp.partition, o)
		}
	case "--to-datetime":
		// A partition with no record at or after the time gets its end
		// offset: kadm asks again for those, and their timestamp is -1.
		ms := at.UnixMilli()
		list := func(ctx context.Context, topics ...string) (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, ms, topics...)
		}
		listed, err := listOffsets(ctx, list, "by time", topics, parts)
		if err != nil {
			return err
		}
		for _, tp := range parts {
			o, _ := listed.Lookup(tp.topic, tp.partition)
			if o.Timestamp < 0 {
				notes = append(notes, fmt.Sprintf("%s: no record at or after %s; using the end offset %d", tp, at.UTC().Format(noteTime), o.Offset))
			}
			set(tp.topic, tp.partition, o.Offset)
		}
	}

	committed, err := adm.FetchOffsets(ctx, *group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return fmt.Errorf("fetch offsets of group %s: %w", *group, err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Topic\tPartition\tCommitted\tNewOffset")
	commits := kadm.Offsets{}
	for _, tp := range parts {
		old := "-"
		if c, ok := committed.Lookup(tp.topic, tp.partition); ok && c.Err == nil && c.At >= 0 {
			old = fmt.Sprint(c.At)
		}
		o := target[tp.topic][tp.partition]
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", tp.topic, tp.partition, old, o)
		commits.AddOffset(tp.topic, tp.partition, o, -1)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintf(e.stderr, "note: %s\n", n)
	}
	if *dryRun {
		fmt.Fprintf(e.stderr, "dry run: group %s not changed\n", *group)
		return nil
	}

	resps, err := adm.CommitOffsets(ctx, *group, commits)
	if err == nil {
		err = resps.Error()
	}
	switch {
	case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.RebalanceInProgress):
		// Members joined since the group was checked.
		return fmt.Errorf("commit offsets of group %s: %w (the group is no longer empty)", *group, err)
	case err != nil:
		return fmt.Errorf("commit offsets of group %s: %w", *group, err)
	}
	fmt.Fprintf(e.stderr, "reset %d offsets of group %s\n", len(parts), *group)
	return nil
}

// topicPartition names one partition in messages.
type topicPartition struct {
	topic     string
	partition int32
}

func (tp topicPartition) String() string {
	return fmt.Sprintf("topic %s partition %d", tp.topic, tp.partition)
}

// parseTopicSpecs reads --topic values, TOPIC or TOPIC:P,P..., into the
// partitions wanted per topic; nil means every partition.
func parseTopicSpecs(specs []string) (map[string][]int32, error) {
	want := map[string][]int32{}
	all := map[string]bool{}
	for _, spec := range specs {
		// Topic names cannot hold a colon, so the first one ends it.
		topic, list, hasParts := strings.Cut(spec, ":")
		if topic == "" {
			return nil, fmt.Errorf("--topic %q: missing topic name", spec)
		}
		if !hasParts {
			all[topic] = true
			want[topic] = nil
			continue
		}
		for s := range strings.SplitSeq(list, ",") {
			p, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
			if err != nil || p < 0 {
				return nil, fmt.Errorf("--topic %q: %q is not a partition number", spec, s)
			}
			if !all[topic] && !slices.Contains(want[topic], int32(p)) {
				want[topic] = append(want[topic], int32(p))
			}
		}
	}
	return want, nil
}

// parseDatetime reads an RFC 3339 time, a local time without zone, or
// epoch milliseconds.
func parseDatetime(s string) (time.Time, error) {
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
	if t, err := time.ParseInLocation(localDatetime, s, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want RFC 3339 (2006-01-02T15:04:05Z or +07:00), local %s, or epoch milliseconds", localDatetime)
}

// checkGroupEmpty fails unless group has no members. A group that does
// not exist is fine: committing offsets creates it.
func checkGroupEmpty(ctx context.Context, adm *kadm.Client, group string) error {
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group %s: %w", group, err)
	}
	d, ok := described[group]
	switch {
	case !ok, errors.Is(d.Err, kerr.GroupIDNotFound), d.Err == nil && d.State == "Dead":
		return nil
	case d.Err != nil:
		return fmt.Errorf("describe group %s: %w", group, d.Err)
	case d.State != "Empty" || len(d.Members) > 0:
		return fmt.Errorf("group %s is %s with %d member(s): offsets can only be reset while it has none; stop its consumers first",
			group, d.State, len(d.Members))
	}
	return nil
}

// resolvePartitions checks that the wanted topics and partitions exist and
// returns them in order, every partition of a topic given without any.
func resolvePartitions(ctx context.Context, adm *kadm.Client, want map[string][]int32) ([]topicPartition, error) {
	topics := slices.Sorted(maps.Keys(want))
	tds, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var parts []topicPartition
	for _, t := range topics {
		td, ok := tds[t]
		switch {
		case !ok:
			return nil, fmt.Errorf("topic %s: %w", t, kerr.UnknownTopicOrPartition)
		case td.Err != nil:
			return nil, fmt.Errorf("topic %s: %w", t, td.Err)
		}
		ps := want[t]
		if ps == nil {
			ps = slices.Collect(maps.Keys(td.Partitions))
		}
		slices.Sort(ps)
		for _, p := range ps {
			if _, ok := td.Partitions[p]; !ok {
				return nil, fmt.Errorf("topic %s has no partition %d (it has %d)", t, p, len(td.Partitions))
			}
			parts = append(parts, topicPartition{t, p})
		}
	}
	return parts, nil
}

// listOffsets lists offsets with list and fails unless every wanted
// partition has one.
func listOffsets(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error),
	what string, topics []string, parts []topicPartition,
) (kadm.ListedOffsets, error) {
	listed, err := list(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list %s offsets: %w", what, err)
	}
	for _, tp := range parts {
		o, ok := listed.Lookup(tp.topic, tp.partition)
		switch {
		case !ok:
			return nil, fmt.Errorf("list %s offsets: %s missing from the response", what, tp)
		case o.Err != nil:
			return nil, fmt.Errorf("list %s offsets: %s: %w", what, tp, o.Err)
		}
	}
	return listed, nil
}
