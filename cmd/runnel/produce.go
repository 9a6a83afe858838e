package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const produceSynopsis = "produce TOPIC [--key-separator SEP] [--partition N] [--acks all|1|0] [--compression CODEC] [--timeout D]"

// runProduce writes each line of standard input (without its "\n") to the
// topic as one record. With --key-separator the text before the first
// separator is the key and the rest the value; without it records have no
// key. Records go to --partition, or else are partitioned by key as Kafka's
// Java client does (murmur2), keyless ones spread in sticky batches. It
// reports the number of records written on standard error.
func runProduce(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "produce", produceSynopsis, true)
	sep := fs.String("key-separator", "", "split each line at the first SEP into key and value (default: no key)")
	partition := fs.Int("partition", -1, "write every record to this partition (default: partition by key)")
	acks := fs.String("acks", "all", "acknowledgement: all (every in-sync replica), 1 (the leader) or 0 (none)")
	compression := fs.String("compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	timeout := fs.Duration("timeout", 30*time.Second, "fail a record not acknowledged within this long")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, "TOPIC"); err != nil {
		return err
	}
	topic := pos[0]
	if *partition < -1 || *partition > 1<<31-1 {
		return usagef(fs, "--partition %d is out of range", *partition)
	}
	if *timeout <= 0 {
		return usagef(fs, "--timeout must be positive")
	}

	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(topic),
		// As Kafka's producers do: a broker with auto-creation on
		// creates the topic on first use.
		kgo.AllowAutoTopicCreation(),
		kgo.RecordDeliveryTimeout(*timeout),
		kgo.ProducerLinger(5 * time.Millisecond),
	}
	switch *acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return usagef(fs, "--acks %q: want all, 1 or 0", *acks)
	}
	codec, ok := codecs[*compression]
	if !ok {
		return usagef(fs, "--compression %q: want none, gzip, snappy, lz4 or zstd", *compression)
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	if *partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}

	cl, err := newClient(g, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	var (
		sent     atomic.Int64
		errMu    sync.Mutex
		firstErr error
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			errMu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("record at line %d: %w", r.Context.Value(lineKey{}), err)
			}
			errMu.Unlock()
			return
		}
		sent.Add(1)
	}
	failed := func() bool {
		errMu.Lock()
		defer errMu.Unlock()
		return firstErr != nil
	}

	// Lines are read in their own goroutine so that a signal stops the
	// command even while standard input blocks.
	done := make(chan struct{})
	defer close(done)
	lines := readLines(e.stdin, done)
	var readErr error
	line := 0
loop:
	for {
		var in inputLine
		select {
		case <-ctx.Done():
			break loop
		case l, ok := <-lines:
			if !ok {
				break loop
			}
			in = l
		}
		if in.err != nil {
			readErr = fmt.Errorf("read standard input: %w", in.err)
			break
		}
		line++
		r := &kgo.Record{Value: in.text}
		if *sep != "" {
			k, v, ok := bytes.Cut(in.text, []byte(*sep))
			if !ok {
				readErr = fmt.Errorf("line %d has no key separator %q", line, *sep)
				break
			}
			r.Key, r.Value = k, v
		}
		if *partition >= 0 {
			r.Partition = int32(*partition)
		}
		r.Context = context.WithValue(context.Background(), lineKey{}, line)
		cl.Produce(ctx, r, promise)
		if failed() {
			break
		}
	}
	// Flush what was read even when the input stopped early, so the
	// count on stderr is what the topic holds.
	flushErr := cl.Flush(context.WithoutCancel(ctx))
	fmt.Fprintf(e.stderr, "produced %d records to %s\n", sent.Load(), topic)

	errMu.Lock()
	defer errMu.Unlock()
	switch {
	case firstErr != nil:
		return firstErr
	case readErr != nil:
		return readErr
	case flushErr != nil:
		return flushErr
	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled):
		return ctx.Err()
	}
	return nil
}

// inputLine is one line of input without its "\n", or a read error.
type inputLine struct {
	text []byte
	err  error
}

// readLines sends r's lines until EOF, a read error, or done closes. A last
// line without "\n" counts; an empty input has no lines.
func readLines(r io.Reader, done <-chan struct{}) <-chan inputLine {
	out := make(chan inputLine, 256)
	go func() {
		defer close(out)
		in := bufio.NewReaderSize(r, 64<<10)
		for {
			text, err := in.ReadBytes('\n')
			if len(text) > 0 && text[len(text)-1] == '\n' {
				text = text[:len(text)-1]
				err = nil
			}
			var l inputLine
			switch {
			case err == io.EOF && len(text) == 0:
				return
			case err == io.EOF:
				l = inputLine{text: text}
			default:
				l = inputLine{text: text, err: err}
			}
			select {
			case out <- l:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return out
}

// lineKey keys a record's input line number in its context, for errors.
type lineKey struct{}

var codecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}
