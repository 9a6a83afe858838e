package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const consumeSynopsis = "consume TOPIC [--from-beginning | --offset N] [--partition N] [--print-key] [--print-offset] [--max-messages N] [--timeout D]"

// runConsume prints a topic's records, one a line: the value, preceded by
// "KEY<TAB>" with --print-key and by "PARTITION:OFFSET<TAB>" with
// --print-offset. It reads without a consumer group, from the end of each
// partition unless --from-beginning or --offset says otherwise, until
// --max-messages records were printed, no record arrived for --timeout, or
// it is interrupted; then it reports the count on standard error.
func runConsume(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "consume", consumeSynopsis, true)
	fromBeginning := fs.Bool("from-beginning", false, "start at the start of each partition (default: at the end)")
	offset := fs.Int64("offset", -1, "start at this offset in each partition read")
	partition := fs.Int("partition", -1, "read only this partition (default: all)")
	printKey := fs.Bool("print-key", false, "print KEY<TAB> before each value")
	printOffset := fs.Bool("print-offset", false, "print PARTITION:OFFSET<TAB> before each record")
	maxMessages := fs.Int("max-messages", 0, "exit after this many records (default: no limit); fewer before --timeout is an error")
	timeout := fs.Duration("timeout", 0, "exit when no record arrives for this long (default: wait forever)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, "TOPIC"); err != nil {
		return err
	}
	topic := pos[0]
	offsetSet := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "offset" {
			offsetSet = true
		}
	})
	switch {
	case *fromBeginning && offsetSet:
		return usagef(fs, "--from-beginning and --offset exclude each other")
	case offsetSet && *offset < 0:
		return usagef(fs, "--offset %d is negative", *offset)
	case *partition < -1 || *partition > 1<<31-1:
		return usagef(fs, "--partition %d is out of range", *partition)
	case *maxMessages < 0:
		return usagef(fs, "--max-messages %d is negative", *maxMessages)
	case *timeout < 0:
		return usagef(fs, "--timeout %v is negative", *timeout)
	}
	start := kgo.NewOffset().AtEnd()
	switch {
	case *fromBeginning:
		start = kgo.NewOffset().AtStart()
	case offsetSet:
		start = kgo.NewOffset().At(*offset)
	}

	// Check the topic and partition first: a consumer waits quietly for
	// a topic that does not exist, which helps nobody at a terminal.
	cl, err := newClient(g)
	if err != nil {
		return err
	}
	defer func() { cl.Close() }()
	if err := checkPartition(ctx, kadm.NewClient(cl), topic, *partition); err != nil {
		return err
	}
	cl.Close()

	// The reset offset also applies when the start is out of range: an
	// --offset past a partition's end waits at the end, one below its
	// start begins at the start.
	opts := []kgo.Opt{kgo.ConsumeResetOffset(start)}
	if *partition >= 0 {
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			topic: {int32(*partition): start},
		}))
	} else {
		opts = append(opts, kgo.ConsumeTopics(topic))
	}
	if cl, err = newClient(g, opts...); err != nil {
		return err
	}

	out := bufio.NewWriterSize(e.stdout, 64<<10)
	count := 0
	defer func() {
		fmt.Fprintf(e.stderr, "consumed %s from %s\n", plural(count, "record"), topic)
	}()
	for *maxMessages == 0 || count < *maxMessages {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if *timeout > 0 {
			pctx, cancel = context.WithTimeout(ctx, *timeout)
		}
		want := -1
		if *maxMessages > 0 {
			want = *maxMessages - count
		}
		fetches := cl.PollRecords(pctx, want)
		cancel()
		if ctx.Err() != nil {
			// Interrupted: a normal way to stop.
			return out.Flush()
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			if fetchErr == nil {
				fetchErr = fmt.Errorf("fetch %s[%d]: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			out.Flush()
			return fetchErr
		}
		n := 0
		fetches.EachRecord(func(r *kgo.Record) {
			n++
			if *printOffset {
				fmt.Fprintf(out, "%d:%d\t", r.Partition, r.Offset)
			}
			if *printKey {
				out.Write(r.Key)
				out.WriteByte('\t')
			}
			out.Write(r.Value)
			out.WriteByte('\n')
		})
		count += n
		if err := out.Flush(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if n == 0 && pctx.Err() != nil {
			// --timeout passed with nothing new.
			if *maxMessages > 0 {
				return fmt.Errorf("timed out after %v waiting for records: got %d of %d", *timeout, count, *maxMessages)
			}
			return nil
		}
	}
	return nil
}

// checkPartition fails when the topic, or the one partition asked for, does
// not exist.
func checkPartition(ctx context.Context, adm *kadm.Client, topic string, partition int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	topics, err := adm.ListTopicsWithInternal(ctx, topic)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	td, ok := topics[topic]
	if !ok {
		return fmt.Errorf("topic %s: %w", topic, kerr.UnknownTopicOrPartition)
	}
	if td.Err != nil {
		return fmt.Errorf("topic %s: %w", topic, td.Err)
	}
	if partition >= 0 {
		if _, ok := td.Partitions[int32(partition)]; !ok {
			return fmt.Errorf("topic %s has %d partitions, no partition %d", topic, len(td.Partitions), partition)
		}
	}
	return nil
}
