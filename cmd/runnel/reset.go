package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

const appResetSynopsis = `reset --application-id ID --input-topics T1,T2 [--dry-run]
                     (--to-earliest | --to-latest | --to-offset N | --to-datetime TS | --by-duration D)`

// runReset resets a stream application for reprocessing, like Kafka's
// kafka-streams-application-reset: it commits new offsets on the input
// topics for the application's consumer group (the application id) and
// deletes the application's internal topics. The group must have no
// members. The local state of each instance is cleared separately, with
// App.CleanUp.
func runReset(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "reset", appResetSynopsis, true)
	app := fs.String("application-id", "", "the stream application's id: its consumer group and internal topic prefix (required)")
	inputs := fs.String("input-topics", "", "comma-separated input `TOPICS` whose committed offsets to reset")
	fs.Bool("to-earliest", false, "reset the inputs to each partition's start offset")
	fs.Bool("to-latest", false, "reset the inputs to each partition's end offset")
	toOffset := fs.Int64("to-offset", 0, "reset the inputs to offset `N`, clamped to [start, end] of each partition")
	toDatetime := fs.String("to-datetime", "", "reset the inputs to the first record at or after `TS` (RFC 3339, local "+localDatetime+", or epoch milliseconds)")
	byDuration := fs.Duration("by-duration", 0, "reset the inputs to the first record at or after `D` ago")
	dryRun := fs.Bool("dry-run", false, "print what would be done without doing it")
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
		if (strings.HasPrefix(f.Name, "to-") || f.Name == "by-duration") && f.Value.String() != "false" {
			modes = append(modes, "--"+f.Name)
		}
	})
	var topics []string
	for t := range strings.SplitSeq(*inputs, ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	switch {
	case *app == "":
		return usagef(fs, "missing --application-id")
	case len(topics) > 0 && len(modes) == 0:
		return usagef(fs, "missing --to-earliest, --to-latest, --to-offset, --to-datetime or --by-duration")
	case len(modes) > 1:
		return usagef(fs, "%s exclude each other", strings.Join(modes, " and "))
	case len(modes) == 1 && len(topics) == 0:
		return usagef(fs, "%s needs --input-topics", modes[0])
	case *toOffset < 0:
		return usagef(fs, "--to-offset %d is negative", *toOffset)
	case *byDuration < 0:
		return usagef(fs, "--by-duration %v is negative", *byDuration)
	}
	var at time.Time
	if len(modes) == 1 {
		switch modes[0] {
		case "--to-datetime":
			if at, err = parseDatetime(*toDatetime); err != nil {
				return usagef(fs, "--to-datetime %q: %v", *toDatetime, err)
			}
		case "--by-duration":
			at = time.Now().Add(-*byDuration)
		}
	}

	adm, ctx, done, err := openAdmin(ctx, g, *timeout)
	if err != nil {
		return err
	}
	defer done()
	if err := checkGroupEmpty(ctx, adm, *app); err != nil {
		return err
	}

	var commits kadm.Offsets
	if len(topics) > 0 {
		want := map[string][]int32{}
		for _, t := range topics {
			want[t] = nil
		}
		parts, err := resolvePartitions(ctx, adm, want)
		if err != nil {
			return err
		}
		if commits, err = resetTargets(ctx, e, adm, modes[0], parts, *toOffset, at); err != nil {
			return err
		}
		committed, err := adm.FetchOffsets(ctx, *app)
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			return fmt.Errorf("fetch offsets of group %s: %w", *app, err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "Topic\tPartition\tCommitted\tNewOffset")
		for _, tp := range parts {
			old := "-"
			if c, ok := committed.Lookup(tp.topic, tp.partition); ok && c.Err == nil && c.At >= 0 {
				old = fmt.Sprint(c.At)
			}
			o, _ := commits.Lookup(tp.topic, tp.partition)
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", tp.topic, tp.partition, old, o.At)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	all, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var internal []string
	for _, t := range all.Names() {
		if isInternalTopic(*app, t) {
			internal = append(internal, t)
		}
	}
	slices.Sort(internal)
	for _, t := range internal {
		fmt.Fprintf(e.stdout, "internal topic %s: delete\n", t)
	}
	if *dryRun {
		fmt.Fprintf(e.stderr, "dry run: application %s not changed\n", *app)
		return nil
	}

	if len(commits) > 0 {
		resps, err := adm.CommitOffsets(ctx, *app, commits)
		if err == nil {
			err = resps.Error()
		}
		if err != nil {
			return fmt.Errorf("commit offsets of group %s: %w", *app, err)
		}
	}
	if len(internal) > 0 {
		// The group's offsets on its repartition topics would outlive
		// them and point into the topics created anew.
		if err := deleteGroupOffsets(ctx, adm, *app, internal); err != nil {
			return err
		}
		resps, err := adm.DeleteTopics(ctx, internal...)
		if err == nil {
			err = resps.Error()
		}
		if err != nil {
			return fmt.Errorf("delete internal topics: %w", err)
		}
	}
	fmt.Fprintf(e.stderr, "reset application %s: %d input offsets committed, %d internal topics deleted; clear each instance's local state (App.CleanUp) before restarting it\n",
		*app, len(commits.Sorted()), len(internal))
	return nil
}

// isInternalTopic reports whether topic is one of app's internal topics:
// named "<app>-…" and ending as a changelog, a repartition topic or a
// foreign-key join's subscription topics do (Kafka's reset tool's rule).
func isInternalTopic(app, topic string) bool {
	if !strings.HasPrefix(topic, app+"-") {
		return false
	}
	return strings.HasSuffix(topic, "-changelog") || strings.HasSuffix(topic, "-repartition") || strings.HasSuffix(topic, "-topic")
}

// deleteGroupOffsets deletes group's committed offsets on topics.
func deleteGroupOffsets(ctx context.Context, adm *kadm.Client, group string, topics []string) error {
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	del := kadm.TopicsSet{}
	committed.Each(func(o kadm.OffsetResponse) {
		if slices.Contains(topics, o.Topic) {
			del.Add(o.Topic, o.Partition)
		}
	})
	if len(del) == 0 {
		return nil
	}
	resps, err := adm.DeleteOffsets(ctx, group, del)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return fmt.Errorf("delete offsets of group %s on internal topics: %w", group, err)
	}
	return nil
}

// resetTargets returns the offsets to commit for parts under mode, and
// prints a note wherever the request could not be followed to the letter.
func resetTargets(ctx context.Context, e env, adm *kadm.Client, mode string, parts []topicPartition, toOffset int64, at time.Time) (kadm.Offsets, error) {
	var topics []string
	for _, tp := range parts {
		if !slices.Contains(topics, tp.topic) {
			topics = append(topics, tp.topic)
		}
	}
	out := kadm.Offsets{}
	switch mode {
	case "--to-earliest", "--to-latest":
		list, what := adm.ListStartOffsets, "start"
		if mode == "--to-latest" {
			list, what = adm.ListEndOffsets, "end"
		}
		listed, err := listOffsets(ctx, list, what, topics, parts)
		if err != nil {
			return nil, err
		}
		for _, tp := range parts {
			o, _ := listed.Lookup(tp.topic, tp.partition)
			out.AddOffset(tp.topic, tp.partition, o.Offset, -1)
		}
	case "--to-offset":
		starts, err := listOffsets(ctx, adm.ListStartOffsets, "start", topics, parts)
		if err != nil {
			return nil, err
		}
		ends, err := listOffsets(ctx, adm.ListEndOffsets, "end", topics, parts)
		if err != nil {
			return nil, err
		}
		for _, tp := range parts {
			start, _ := starts.Lookup(tp.topic, tp.partition)
			end, _ := ends.Lookup(tp.topic, tp.partition)
			o := min(max(toOffset, start.Offset), end.Offset)
			if o != toOffset {
				fmt.Fprintf(e.stderr, "note: %s: offset %d is outside [%d, %d]; using %d\n", tp, toOffset, start.Offset, end.Offset, o)
			}
			out.AddOffset(tp.topic, tp.partition, o, -1)
		}
	case "--to-datetime", "--by-duration":
		ms := at.UnixMilli()
		list := func(ctx context.Context, topics ...string) (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, ms, topics...)
		}
		listed, err := listOffsets(ctx, list, "by time", topics, parts)
		if err != nil {
			return nil, err
		}
		for _, tp := range parts {
			o, _ := listed.Lookup(tp.topic, tp.partition)
			if o.Timestamp < 0 {
				fmt.Fprintf(e.stderr, "note: %s: no record at or after %s; using the end offset %d\n", tp, at.UTC().Format(noteTime), o.Offset)
			}
			out.AddOffset(tp.topic, tp.partition, o.Offset, -1)
		}
	}
	return out, nil
}
