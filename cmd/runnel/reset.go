package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/runnel-dev/runnel"
)

const appResetSynopsis = `reset --application-id ID --input-topics T1,T2 [--dry-run]
                     (--to-earliest | --to-latest | --to-offset N | --to-datetime TS | --by-duration D)`

// runReset resets a stream application for reprocessing, like Kafka's
// kafka-streams-application-reset: it commits new offsets on the input
// topics for the application's consumer group (the application id) and
// deletes the application's internal topics (runnel.PlanReset and Apply).
// The group must have no members. The local state of each instance is
// cleared separately, with App.CleanUp.
func runReset(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "reset", appResetSynopsis, true)
	app := fs.String("application-id", "", "the stream application's id: its consumer group and internal topic prefix (required)")
	inputs := fs.String("input-topics", "", "comma-separated input `TOPICS` whose committed offsets to reset")
	spec := specFlags(fs, "reset the inputs")
	dryRun := fs.Bool("dry-run", false, "print what would be done without doing it")
	timeout := adminFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos); err != nil {
		return err
	}
	var topics []string
	for t := range strings.SplitSeq(*inputs, ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	if *app == "" {
		return usagef(fs, "missing --application-id")
	}
	// Without inputs there is nothing to move: the internal topics
	// are deleted all the same.
	target, err := spec(len(topics) > 0)
	if err != nil {
		return err
	}
	if len(topics) == 0 {
		var given string
		fs.Visit(func(f *flag.Flag) {
			if strings.HasPrefix(f.Name, "to-") || f.Name == "by-duration" {
				given = "--" + f.Name
			}
		})
		if given != "" {
			return usagef(fs, "%s needs --input-topics", given)
		}
	}

	adm, ctx, done, err := openAdmin(ctx, g, *timeout)
	if err != nil {
		return err
	}
	defer done()
	plan, err := runnel.PlanReset(ctx, adm, *app, topics, target)
	if err != nil {
		return err
	}
	for _, o := range plan.Offsets {
		if o.Note != "" {
			fmt.Fprintf(e.stderr, "note: topic %s partition %d: %s\n", o.Topic, o.Partition, o.Note)
		}
	}
	if len(plan.Offsets) > 0 {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "Topic\tPartition\tCommitted\tNewOffset")
		for _, o := range plan.Offsets {
			old := "-"
			if o.Committed >= 0 {
				old = fmt.Sprint(o.Committed)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", o.Topic, o.Partition, old, o.Offset)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, t := range plan.InternalTopics {
		fmt.Fprintf(e.stdout, "internal topic %s: delete\n", t)
	}
	if *dryRun {
		fmt.Fprintf(e.stderr, "dry run: application %s not changed\n", *app)
		return nil
	}
	if err := plan.Apply(ctx, adm); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "reset application %s: %s committed, %s deleted; clear each instance's local state (App.CleanUp) before restarting it\n",
		*app, plural(len(plan.Offsets), "input offset"), plural(len(plan.InternalTopics), "internal topic"))
	return nil
}

// isInternalTopic reports whether topic is one of app's internal topics.
func isInternalTopic(app, topic string) bool { return runnel.IsInternalTopic(app, topic) }
