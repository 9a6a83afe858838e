package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

const groupsSynopsis = `groups SUBCOMMAND [ARGS...]

subcommands:
  list [--state STATE[,STATE...]]
  describe GROUP
  delete GROUP...
  reset-offsets --group GROUP --topic TOPIC[:P,P...] ...
                (--to-earliest | --to-latest | --to-offset N | --to-datetime TS | --by-duration D)
                [--dry-run | --execute]`

// runGroups dispatches the groups subcommands.
func runGroups(ctx context.Context, e env, g *globals, args []string) error {
	usage := func() { fmt.Fprintf(e.stderr, "usage: runnel %s\n", groupsSynopsis) }
	if len(args) == 0 {
		return &usageError{msg: "missing subcommand", usage: usage}
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "list":
		return groupsList(ctx, e, g, rest)
	case "describe":
		return groupsDescribe(ctx, e, g, rest)
	case "delete":
		return groupsDelete(ctx, e, g, rest)
	case "reset-offsets":
		return groupsResetOffsets(ctx, e, g, rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(e.stdout, "usage: runnel %s\n", groupsSynopsis)
		return flag.ErrHelp
	}
	return &usageError{msg: fmt.Sprintf("unknown subcommand %q", sub), usage: usage}
}

// groupStates are the states of a classic group, as ListGroups and
// DescribeGroups name them.
var groupStates = []string{"Empty", "Stable", "PreparingRebalance", "CompletingRebalance", "Dead"}

func groupsList(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "groups list", "groups list [--state STATE[,STATE...]]", true)
	stateFlag := fs.String("state", "", "only groups in these states, comma-separated: "+strings.Join(groupStates, ", "))
	timeout := adminFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos); err != nil {
		return err
	}
	var states []string
	if *stateFlag != "" {
		for s := range strings.SplitSeq(*stateFlag, ",") {
			i := slices.IndexFunc(groupStates, func(st string) bool { return strings.EqualFold(st, strings.TrimSpace(s)) })
			if i < 0 {
				return usagef(fs, "--state %q: want one of %s", s, strings.Join(groupStates, ", "))
			}
			states = append(states, groupStates[i])
		}
	}

	adm, ctx, done, err := openAdmin(ctx, g, *timeout)
	if err != nil {
		return err
	}
	defer done()
	listed, err := adm.ListGroups(ctx, states...)
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	// ListGroups has no member counts; DescribeGroups does. With no
	// names DescribeGroups would describe every group, so ask only when
	// there is one.
	var described kadm.DescribedGroups
	if names := listed.Groups(); len(names) > 0 {
		described, err = adm.DescribeGroups(ctx, names...)
		if err != nil {
			return fmt.Errorf("describe groups: %w", err)
		}
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Group\tState\tProtocolType\tMembers")
	for _, l := range listed.Sorted() {
		members := "-"
		if d, ok := described[l.Group]; ok && d.Err == nil {
			members = fmt.Sprint(len(d.Members))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Group, orDash(l.State), orDash(l.ProtocolType), members)
	}
	return tw.Flush()
}

func groupsDescribe(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "groups describe", "groups describe GROUP", true)
	timeout := adminFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, "GROUP"); err != nil {
		return err
	}
	group := pos[0]
	adm, ctx, done, err := openAdmin(ctx, g, *timeout)
	if err != nil {
		return err
	}
	defer done()

	// Lag describes the group, fetches its committed offsets and lists
	// the end offsets of every partition assigned or committed.
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group %s: %w", group, err)
	}
	l, ok := lags[group]
	if !ok || l.State == "Dead" {
		return fmt.Errorf("describe group %s: %w", group, kerr.GroupIDNotFound)
	}
	if err := l.Error(); err != nil {
		return fmt.Errorf("describe group %s: %w", group, err)
	}

	fmt.Fprintf(e.stdout, "Group: %s\tState: %s\tProtocolType: %s\tProtocol: %s\tCoordinator: %d (%s:%d)\n",
		group, l.State, orDash(l.ProtocolType), orDash(l.Protocol), l.Coordinator.NodeID, l.Coordinator.Host, l.Coordinator.Port)
	fmt.Fprintf(e.stdout, "Members: %d\n", len(l.Members))
	if len(l.Members) > 0 {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  MemberID\tInstanceID\tClientID\tHost\tAssignment")
		for _, m := range l.Members {
			instance := "-"
			if m.InstanceID != nil {
				instance = *m.InstanceID
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", m.MemberID, instance, orDash(m.ClientID), orDash(m.ClientHost), assignment(m))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Topic\tPartition\tCommitted\tEndOffset\tLag\tMember")
	for _, p := range l.Lag.Sorted() {
		committed, lag := "-", "-"
		if p.Commit.At >= 0 {
			committed = fmt.Sprint(p.Commit.At)
			if p.Err == nil {
				lag = fmt.Sprint(p.Lag)
			}
		}
		end := fmt.Sprint(p.End.Offset)
		switch {
		case p.End.Err != nil:
			end = errName(p.End.Err)
		case p.Err != nil:
			// A commit that failed to load, or a partition missing
			// from the listed offsets.
			end = errName(p.Err)
		}
		member := "-"
		if p.Member != nil {
			member = p.Member.MemberID
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", p.Topic, p.Partition, committed, end, lag, member)
	}
	return tw.Flush()
}

func groupsDelete(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "groups delete", "groups delete GROUP...", true)
	timeout := adminFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef(fs, "missing GROUP")
	}
	adm, ctx, done, err := openAdmin(ctx, g, *timeout)
	if err != nil {
		return err
	}
	defer done()
	resps, err := adm.DeleteGroups(ctx, pos...)
	if err != nil {
		return fmt.Errorf("delete groups: %w", err)
	}
	// Every failure but the last is printed here and the last returned,
	// so each gets its own "runnel groups:" line.
	var failed []error
	seen := map[string]bool{}
	for _, group := range pos {
		if seen[group] {
			continue
		}
		seen[group] = true
		r, ok := resps[group]
		switch {
		case !ok:
			failed = append(failed, fmt.Errorf("delete group %s: not in the broker's response", group))
		case errors.Is(r.Err, kerr.NonEmptyGroup):
			failed = append(failed, fmt.Errorf("delete group %s: %w (only a group without members can be deleted; stop its consumers first)", group, r.Err))
		case r.Err != nil && r.ErrMessage != "":
			failed = append(failed, fmt.Errorf("delete group %s: %w: %s", group, r.Err, r.ErrMessage))
		case r.Err != nil:
			failed = append(failed, fmt.Errorf("delete group %s: %w", group, r.Err))
		default:
			fmt.Fprintf(e.stdout, "deleted group %s\n", group)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	for _, err := range failed[:len(failed)-1] {
		fmt.Fprintf(e.stderr, "runnel groups: %v\n", err)
	}
	return failed[len(failed)-1]
}

// assignment formats a consumer member's assigned partitions as
// "TOPIC:P,P TOPIC:P", topics in order; "-" when there are none or the
// group is not a consumer group.
func assignment(m kadm.DescribedGroupMember) string {
	a, ok := m.Assigned.AsConsumer()
	if !ok || a == nil {
		return "-"
	}
	var topics []string
	for _, t := range a.Topics {
		if len(t.Partitions) == 0 {
			continue
		}
		ps := slices.Sorted(slices.Values(t.Partitions))
		topics = append(topics, t.Topic+":"+joinIDs(ps))
	}
	if len(topics) == 0 {
		return "-"
	}
	slices.Sort(topics)
	return strings.Join(topics, " ")
}

// errName is a Kafka error's name (NOT_LEADER_OR_FOLLOWER), or the error's
// text for any other error.
func errName(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return err.Error()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
