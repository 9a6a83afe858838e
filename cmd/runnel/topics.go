package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const topicsSynopsis = `topics SUBCOMMAND [ARGS...]

subcommands:
  create NAME [--partitions N] [--replication-factor R] [--config KEY=VALUE ...]
  list
  describe NAME [--all-configs]
  alter NAME [--config KEY=VALUE ...] [--delete-config KEY ...]
             [--append-config KEY=VALUE ...] [--subtract-config KEY=VALUE ...] [--validate-only]
  delete-records NAME --offset N [--partition P]
  delete NAME`

// runTopics dispatches the topics subcommands.
func runTopics(ctx context.Context, e env, g *globals, args []string) error {
	usage := func() { fmt.Fprintf(e.stderr, "usage: runnel %s\n", topicsSynopsis) }
	if len(args) == 0 {
		return &usageError{msg: "missing subcommand", usage: usage}
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "create":
		return topicsCreate(ctx, e, g, rest)
	case "list":
		return topicsList(ctx, e, g, rest)
	case "describe":
		return topicsDescribe(ctx, e, g, rest)
	case "alter":
		return topicsAlter(ctx, e, g, rest)
	case "delete-records":
		return topicsDeleteRecords(ctx, e, g, rest)
	case "delete":
		return topicsDelete(ctx, e, g, rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(e.stdout, "usage: runnel %s\n", topicsSynopsis)
		return flag.ErrHelp
	}
	return &usageError{msg: fmt.Sprintf("unknown subcommand %q", sub), usage: usage}
}

// adminFlags adds the flags every topics subcommand shares.
func adminFlags(fs *flag.FlagSet) *time.Duration {
	return fs.Duration("timeout", 30*time.Second, "give up after this long")
}

func newAdmin(g *globals) (*kadm.Client, error) {
	cl, err := newClient(g)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// openAdmin returns an admin client for the command and a context bounded
// by its --timeout; done releases both.
func openAdmin(ctx context.Context, g *globals, timeout time.Duration) (*kadm.Client, context.Context, func(), error) {
	adm, err := newAdmin(g)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return adm, ctx, func() { cancel(); adm.Close() }, nil
}

func topicsCreate(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "topics create", "topics create NAME [--partitions N] [--replication-factor R] [--config KEY=VALUE ...]", true)
	partitions := fs.Int("partitions", -1, "number of partitions (default: the broker's num.partitions)")
	rf := fs.Int("replication-factor", -1, "replicas per partition (default: the broker's)")
	var configs listFlag
	fs.Var(&configs, "config", "topic config KEY=VALUE, repeatable (e.g. retention.ms=60000)")
	timeout := adminFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, "NAME"); err != nil {
		return err
	}
	name := pos[0]
	if *partitions == 0 || *partitions < -1 || *partitions > 1<<31-1 {
		return usagef(fs, "--partitions %d must be at least 1", *partitions)
	}
	if *rf == 0 || *rf < -1 || *rf > 1<<15-1 {
		return usagef(fs, "--replication-factor %d must be at least 1", *rf)
	}
	cfg := make(map[string]*string, len(configs))
	for _, kv := range configs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usagef(fs, "--config %q: want KEY=VALUE", kv)
		}
		cfg[k] = &v
	}

	adm, ctx, done, err := openAdmin(ctx, g, *timeout)
	if err != nil {
		return err
	}
	defer done()
	resp, err := adm.CreateTopic(ctx, int32(*partitions), int16(*rf), cfg, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		if resp.ErrMessage != "" {
			return fmt.Errorf("create topic %s: %w: %s", name, err, resp.ErrMessage)
		}
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	fmt.Fprintf(e.stdout, "created topic %s with %d partitions, replication factor %d\n", name, resp.NumPartitions, resp.ReplicationFactor)
	return nil
}

func topicsList(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "topics list", "topics list [--internal]", true)
	internal := fs.Bool("internal", false, "include internal topics")
	timeout := adminFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos); err != nil {
		return err
	}
	adm, ctx, done, err := openAdmin(ctx, g, *timeout)
	if err != nil {
		return err
	}
	defer done()
	topics, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	if !*internal {
		topics.FilterInternal()
	}
	for _, name := range topics.Names() {
		fmt.Fprintln(e.stdout, name)
	}
	return nil
}

func topicsDescribe(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "topics describe", "topics describe NAME [--all-configs]", true)
	all := fs.Bool("all-configs", false, "print every config with its source, not only the topic's own settings")
	timeout := adminFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, "NAME"); err != nil {
		return err
	}
	name := pos[0]
	adm, ctx, done, err := openAdmin(ctx, g, *timeout)
	if err != nil {
		return err
	}
	defer done()

	topics, err := adm.ListTopicsWithInternal(ctx, name)
	if err != nil {
		return fmt.Errorf("describe topic %s: %w", name, err)
	}
	td, ok := topics[name]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return missingTopic(name)
	}
	if td.Err != nil {
		return fmt.Errorf("describe topic %s: %w", name, td.Err)
	}
	// An offline partition has no leader to ask: its offsets print as
	// "-" and the rest of the description stands.
	var shardErrs *kadm.ShardErrors
	starts, err := adm.ListStartOffsets(ctx, name)
	if err != nil && !errors.As(err, &shardErrs) {
		return fmt.Errorf("list start offsets of %s: %w", name, err)
	}
	ends, err := adm.ListEndOffsets(ctx, name)
	if err != nil && !errors.As(err, &shardErrs) {
		return fmt.Errorf("list end offsets of %s: %w", name, err)
	}

	parts := td.Partitions.Sorted()
	rf := 0
	if len(parts) > 0 {
		rf = len(parts[0].Replicas)
	}
	// Topic ids print as Kafka prints them (Uuid.toString): URL-safe
	// base64 without padding.
	id := base64.RawURLEncoding.EncodeToString(td.ID[:])
	fmt.Fprintf(e.stdout, "Topic: %s\tID: %s\tPartitions: %d\tReplicationFactor: %d\n", name, id, len(parts), rf)

	// Configs need DescribeConfigs, which not every broker serves; the
	// rest of the description stands without them.
	rcs, cerr := adm.DescribeTopicConfigs(ctx, name)
	var rc kadm.ResourceConfig
	if cerr == nil {
		rc, cerr = rcs.On(name, nil)
		if cerr == nil {
			cerr = rc.Err
		}
	}
	switch {
	case cerr != nil:
		fmt.Fprintf(e.stdout, "Configs: unavailable (%v)\n", cerr)
	case *all:
		fmt.Fprintln(e.stdout, "Configs:")
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		cs := slices.Clone(rc.Configs)
		slices.SortFunc(cs, func(a, b kadm.Config) int { return strings.Compare(a.Key, b.Key) })
		for _, c := range cs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Key, configValue(c), configSource(c.Source))
		}
		tw.Flush()
	default:
		var set []string
		for _, c := range rc.Configs {
			if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
				set = append(set, c.Key+"="+configValue(c))
			}
		}
		slices.Sort(set)
		fmt.Fprintf(e.stdout, "Configs: %s\n", strings.Join(set, ","))
	}

	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Partition\tLeader\tEpoch\tReplicas\tISR\tStartOffset\tEndOffset")
	for _, p := range parts {
		leader := strconv.Itoa(int(p.Leader))
		switch {
		case errors.Is(p.Err, kerr.LeaderNotAvailable):
			// Offline: its replicas and ISR say who could bring it back.
			leader = "none"
		case p.Err != nil:
			fmt.Fprintf(tw, "%d\terror: %v\t\t\t\t\t\n", p.Partition, p.Err)
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\n", p.Partition, leader, p.LeaderEpoch,
			joinIDs(p.Replicas), joinIDs(p.ISR), offsetOf(starts, name, p.Partition), offsetOf(ends, name, p.Partition))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	describeReassignments(ctx, e, adm, name, parts)
	return nil
}

// describeReassignments prints the partitions being reassigned, with the
// replicas being added and removed, as kafka-topics --describe does. A
// cluster that does not list reassignments has none to print.
func describeReassignments(ctx context.Context, e env, adm *kadm.Client, name string, parts []kadm.PartitionDetail) {
	set := kadm.TopicsSet{}
	for _, p := range parts {
		set.Add(name, p.Partition)
	}
	res, err := adm.ListPartitionReassignments(ctx, set)
	if err != nil {
		return
	}
	for _, r := range res.Sorted() {
		fmt.Fprintf(e.stdout, "Partition %d reassigning: adding %s, removing %s\n", r.Partition, joinIDs(r.AddingReplicas), joinIDs(r.RemovingReplicas))
	}
}

func topicsDelete(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "topics delete", "topics delete NAME", true)
	timeout := adminFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, "NAME"); err != nil {
		return err
	}
	name := pos[0]
	adm, ctx, done, err := openAdmin(ctx, g, *timeout)
	if err != nil {
		return err
	}
	defer done()
	resp, err := adm.DeleteTopic(ctx, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		if resp.ErrMessage != "" {
			return fmt.Errorf("delete topic %s: %w: %s", name, err, resp.ErrMessage)
		}
		return fmt.Errorf("delete topic %s: %w", name, err)
	}
	fmt.Fprintf(e.stdout, "deleted topic %s\n", name)
	return nil
}

func configValue(c kadm.Config) string {
	if c.Sensitive {
		return "(sensitive)"
	}
	if c.Value == nil {
		return "(null)"
	}
	return *c.Value
}

// configSource names where a config's value comes from: the topic's own
// setting, a broker's dynamic config, the cluster-wide dynamic broker
// default, the broker's static configuration, or Kafka's default.
func configSource(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "topic"
	case kmsg.ConfigSourceDynamicBrokerConfig:
		return "broker"
	case kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return "cluster"
	case kmsg.ConfigSourceStaticBrokerConfig:
		return "static"
	case kmsg.ConfigSourceDefaultConfig:
		return "default"
	}
	return strings.ToLower(s.String())
}

func joinIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ",")
}

func offsetOf(lo kadm.ListedOffsets, topic string, p int32) string {
	o, ok := lo.Lookup(topic, p)
	switch {
	case !ok:
		return "-"
	case o.Err != nil:
		var ke *kerr.Error
		if errors.As(o.Err, &ke) {
			return ke.Message
		}
		return "error"
	}
	return fmt.Sprint(o.Offset)
}
