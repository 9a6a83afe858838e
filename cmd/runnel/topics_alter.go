package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// topicsAlter changes a topic's configs with IncrementalAlterConfigs: the
// broker applies every change or none.
func topicsAlter(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "topics alter", "topics alter NAME [--config KEY=VALUE ...] [--delete-config KEY ...] [--append-config KEY=VALUE ...] [--subtract-config KEY=VALUE ...] [--validate-only]", true)
	var set, del, add, sub listFlag
	fs.Var(&set, "config", "set topic config KEY=VALUE, repeatable (e.g. retention.ms=60000)")
	fs.Var(&del, "delete-config", "remove the topic's own KEY, back to the broker's default; repeatable")
	fs.Var(&add, "append-config", "add items to a list config KEY=ITEM[,ITEM] (e.g. cleanup.policy=compact); repeatable")
	fs.Var(&sub, "subtract-config", "remove items from a list config KEY=ITEM[,ITEM]; repeatable")
	validate := fs.Bool("validate-only", false, "have the broker check the changes without making them")
	timeout := adminFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, "NAME"); err != nil {
		return err
	}
	name := pos[0]
	var ops []kadm.AlterConfig
	for _, kv := range []struct {
		flag string
		list listFlag
		op   kadm.IncrementalOp
	}{
		{"--config", set, kadm.SetConfig},
		{"--append-config", add, kadm.AppendConfig},
		{"--subtract-config", sub, kadm.SubtractConfig},
	} {
		for _, s := range kv.list {
			k, v, ok := strings.Cut(s, "=")
			if !ok || k == "" {
				return usagef(fs, "%s %q: want KEY=VALUE", kv.flag, s)
			}
			ops = append(ops, kadm.AlterConfig{Op: kv.op, Name: k, Value: &v})
		}
	}
	for _, k := range del {
		if k == "" || strings.Contains(k, "=") {
			return usagef(fs, "--delete-config %q: want KEY", k)
		}
		ops = append(ops, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	if len(ops) == 0 {
		return usagef(fs, "nothing to change: give --config, --delete-config, --append-config or --subtract-config")
	}

	adm, ctx, done, err := openAdmin(ctx, g, *timeout)
	if err != nil {
		return err
	}
	defer done()
	alter := adm.AlterTopicConfigs
	if *validate {
		alter = adm.ValidateAlterTopicConfigs
	}
	rs, err := alter(ctx, ops, name)
	var r kadm.AlterConfigsResponse
	if err == nil {
		r, err = rs.On(name, nil)
	}
	if err == nil {
		err = r.Err
	}
	if err != nil {
		if r.ErrMessage != "" {
			return fmt.Errorf("alter topic %s: %w: %s", name, err, r.ErrMessage)
		}
		return fmt.Errorf("alter topic %s: %w", name, err)
	}
	if *validate {
		fmt.Fprintf(e.stdout, "validated %d config changes to topic %s; nothing altered\n", len(ops), name)
		return nil
	}
	fmt.Fprintf(e.stdout, "altered %d configs of topic %s\n", len(ops), name)
	return nil
}

// topicsDeleteRecords moves partitions' log start offsets forward with
// DeleteRecords.
func topicsDeleteRecords(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "topics delete-records", "topics delete-records NAME --offset N [--partition P]", true)
	partition := fs.Int("partition", -1, "the partition (default: every partition)")
	offset := fs.Int64("offset", -2, "delete the records below this offset; -1 means the high watermark (everything)")
	timeout := adminFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, "NAME"); err != nil {
		return err
	}
	name := pos[0]
	if *offset < -1 {
		return usagef(fs, "--offset is required: an offset, or -1 for the high watermark")
	}
	if *partition < -1 || *partition > 1<<31-1 {
		return usagef(fs, "--partition %d is not a partition", *partition)
	}

	adm, ctx, done, err := openAdmin(ctx, g, *timeout)
	if err != nil {
		return err
	}
	defer done()
	topics, err := adm.ListTopics(ctx, name)
	if err != nil {
		return fmt.Errorf("delete records of %s: %w", name, err)
	}
	td, ok := topics[name]
	if !ok {
		return fmt.Errorf("delete records of %s: %w", name, kerr.UnknownTopicOrPartition)
	}
	if td.Err != nil {
		return fmt.Errorf("delete records of %s: %w", name, td.Err)
	}
	offs := kadm.Offsets{}
	for _, p := range td.Partitions.Sorted() {
		if *partition == -1 || p.Partition == int32(*partition) {
			offs.Add(kadm.Offset{Topic: name, Partition: p.Partition, At: *offset})
		}
	}
	if len(offs) == 0 {
		return fmt.Errorf("delete records of %s: partition %d: %w", name, *partition, kerr.UnknownTopicOrPartition)
	}
	rs, err := adm.DeleteRecords(ctx, offs)
	if err != nil {
		return fmt.Errorf("delete records of %s: %w", name, err)
	}
	var failed error
	for _, r := range rs.Sorted() {
		if r.Err != nil {
			fmt.Fprintf(e.stdout, "partition %d: %v\n", r.Partition, r.Err)
			failed = fmt.Errorf("delete records of %s: partition %d: %w", name, r.Partition, r.Err)
			continue
		}
		fmt.Fprintf(e.stdout, "partition %d: start offset %d\n", r.Partition, r.LowWatermark)
	}
	return failed
}
