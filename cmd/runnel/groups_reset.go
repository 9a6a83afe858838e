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

	"github.com/runnel-dev/runnel/internal/offsetspec"
)

const resetSynopsis = `groups reset-offsets --group GROUP --topic TOPIC[:P,P...] ...
                     (--to-earliest | --to-latest | --to-offset N | --to-datetime TS | --by-duration D)
                     [--dry-run | --execute]`

// resetFlags are runnel groups reset-offsets' arguments, checked.
type resetFlags struct {
	group   string
	want    map[string][]int32 // partitions per topic, nil for all
	spec    offsetspec.Spec
	execute bool
	timeout time.Duration
}

// parseGroupsReset reads runnel groups reset-offsets' arguments.
func parseGroupsReset(e env, g *globals, args []string) (resetFlags, error) {
	fs := newFlagSet(e, g, "groups reset-offsets", resetSynopsis, true)
	group := fs.String("group", "", "the `GROUP` whose offsets to reset (required)")
	var topicSpecs listFlag
	fs.Var(&topicSpecs, "topic", "`TOPIC` (every partition) or TOPIC:P,P... to reset, repeatable (required)")
	spec := specFlags(fs, "reset")
	dryRun := fs.Bool("dry-run", false, "print the new offsets without committing them (what happens without --execute)")
	execute := fs.Bool("execute", false, "commit the new offsets")
	timeout := adminFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return resetFlags{}, err
	}
	if err := wantArgs(fs, pos); err != nil {
		return resetFlags{}, err
	}
	f := resetFlags{group: *group, execute: *execute, timeout: *timeout}
	switch {
	case *group == "":
		return f, usagef(fs, "missing --group")
	case len(topicSpecs) == 0:
		return f, usagef(fs, "missing --topic")
	case *dryRun && *execute:
		return f, usagef(fs, "--dry-run and --execute exclude each other")
	}
	if f.spec, err = spec(true); err != nil {
		return f, err
	}
	if f.want, err = parseTopicSpecs(topicSpecs); err != nil {
		return f, usagef(fs, "%v", err)
	}
	return f, nil
}

// specFlags adds the flags that say where offsets go, --to-earliest,
// --to-latest, --to-offset, --to-datetime and --by-duration, to fs, and
// returns the function that reads them once fs is parsed: at most one
// may be given, and with required exactly one.
func specFlags(fs *flag.FlagSet, verb string) func(required bool) (offsetspec.Spec, error) {
	fs.Bool("to-earliest", false, verb+" to each partition's start offset")
	fs.Bool("to-latest", false, verb+" to each partition's end offset")
	toOffset := fs.Int64("to-offset", 0, verb+" to offset `N`, clamped to [start, end] of each partition")
	toDatetime := fs.String("to-datetime", "", verb+" to the first record at or after `TS` (RFC 3339, local "+offsetspec.LocalDatetime+", or epoch milliseconds)")
	byDuration := fs.Duration("by-duration", 0, verb+" to the first record at or after `D` ago")
	return func(required bool) (offsetspec.Spec, error) {
		var modes []string
		fs.Visit(func(f *flag.Flag) {
			// --to-earliest=false chooses nothing.
			if (strings.HasPrefix(f.Name, "to-") || f.Name == "by-duration") && f.Value.String() != "false" {
				modes = append(modes, "--"+f.Name)
			}
		})
		switch {
		case len(modes) == 0 && required:
			return offsetspec.Spec{}, usagef(fs, "missing --to-earliest, --to-latest, --to-offset, --to-datetime or --by-duration")
		case len(modes) == 0:
			return offsetspec.Earliest(), nil
		case len(modes) > 1:
			return offsetspec.Spec{}, usagef(fs, "%s exclude each other", strings.Join(modes, " and "))
		}
		switch modes[0] {
		case "--to-latest":
			return offsetspec.Latest(), nil
		case "--to-offset":
			if *toOffset < 0 {
				return offsetspec.Spec{}, usagef(fs, "--to-offset %d is negative", *toOffset)
			}
			return offsetspec.Offset(*toOffset), nil
		case "--to-datetime":
			at, err := offsetspec.ParseDatetime(*toDatetime)
			if err != nil {
				return offsetspec.Spec{}, usagef(fs, "--to-datetime %q: %v", *toDatetime, err)
			}
			return offsetspec.Time(at), nil
		case "--by-duration":
			if *byDuration < 0 {
				return offsetspec.Spec{}, usagef(fs, "--by-duration %v is negative", *byDuration)
			}
			return offsetspec.Duration(*byDuration, time.Now()), nil
		}
		return offsetspec.Earliest(), nil
	}
}

// groupsResetOffsets prints the new offsets of an empty group's
// partitions and, with --execute, commits them, like
// kafka-consumer-groups --reset-offsets. A group with members would
// overwrite them with its next commit, so it is refused, as Kafka's tool
// does.
func groupsResetOffsets(ctx context.Context, e env, g *globals, args []string) error {
	f, err := parseGroupsReset(e, g, args)
	if err != nil {
		return err
	}
	return resetGroup(ctx, e, g, f)
}

// resetGroup works out f's plan, prints it, and commits it with --execute.
func resetGroup(ctx context.Context, e env, g *globals, f resetFlags) error {
	adm, ctx, done, err := openAdmin(ctx, g, f.timeout)
	if err != nil {
		return err
	}
	defer done()

	if err := checkGroupEmpty(ctx, adm, f.group); err != nil {
		return err
	}
	parts, err := resolvePartitions(ctx, adm, f.want)
	if err != nil {
		return err
	}
	resolved, err := offsetspec.Resolve(ctx, adm, f.spec, parts)
	if err != nil {
		return err
	}
	committed, err := adm.FetchOffsets(ctx, f.group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return fmt.Errorf("fetch offsets of group %s: %w", f.group, err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Topic\tPartition\tCommitted\tNewOffset")
	commits := kadm.Offsets{}
	for _, r := range resolved {
		old := "-"
		if c, ok := committed.Lookup(r.Topic, r.Partition.Partition); ok && c.Err == nil && c.At >= 0 {
			old = fmt.Sprint(c.At)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", r.Topic, r.Partition.Partition, old, r.Offset)
		commits.AddOffset(r.Topic, r.Partition.Partition, r.Offset, -1)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range resolved {
		if r.Note != "" {
			fmt.Fprintf(e.stderr, "note: %s: %s\n", r.Partition, r.Note)
		}
	}
	if !f.execute {
		fmt.Fprintf(e.stderr, "dry run: group %s not changed; add --execute to commit these offsets\n", f.group)
		return nil
	}

	resps, err := adm.CommitOffsets(ctx, f.group, commits)
	if err == nil {
		err = resps.Error()
	}
	switch {
	case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.RebalanceInProgress):
		// Members joined since the group was checked.
		return fmt.Errorf("commit offsets of group %s: %w (the group is no longer empty)", f.group, err)
	case err != nil:
		return fmt.Errorf("commit offsets of group %s: %w", f.group, err)
	}
	fmt.Fprintf(e.stderr, "reset %s of group %s\n", plural(len(parts), "offset"), f.group)
	return nil
}

// plural says n things: "1 offset", "2 offsets".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
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
		return fmt.Errorf("group %s is %s with %s: offsets can only be reset while it has none; stop its consumers first",
			group, d.State, plural(len(d.Members), "member"))
	}
	return nil
}

// resolvePartitions checks that the wanted topics and partitions exist and
// returns them in order, every partition of a topic given without any.
func resolvePartitions(ctx context.Context, adm *kadm.Client, want map[string][]int32) ([]offsetspec.Partition, error) {
	topics := slices.Sorted(maps.Keys(want))
	tds, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var parts []offsetspec.Partition
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
			parts = append(parts, offsetspec.Partition{Topic: t, Partition: p})
		}
	}
	return parts, nil
}
