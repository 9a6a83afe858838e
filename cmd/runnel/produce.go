package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const produceSynopsis = "produce TOPIC [flags]"

// Bounds of --max-message-bytes (max.request.size): franz-go's own bounds
// of a batch's size.
const (
	minMessageBytes     = 512
	maxMessageBytes     = 1 << 30
	defaultMessageBytes = 1 << 20 // Kafka's max.request.size default
)

// produceFlags are runnel produce's arguments, checked.
type produceFlags struct {
	topic           string
	sep             string
	partition       int32 // -1: by key
	acks            string
	codec           kgo.CompressionCodec
	timeout         time.Duration
	maxMessageBytes int32
}

// parseProduce reads runnel produce's arguments.
func parseProduce(e env, g *globals, args []string) (produceFlags, error) {
	fs := newFlagSet(e, g, "produce", produceSynopsis, true)
	sep := fs.String("key-separator", "", "split each line at the first `SEP` into key and value (default: no key)")
	partition := fs.Int("partition", -1, "write every record to partition `N` (default: partition by key)")
	acks := fs.String("acks", "all", "acknowledgement: all (every in-sync replica), 1 (the leader) or 0 (none)")
	compression := fs.String("compression", "none", "batch compression `CODEC`: none, gzip, snappy, lz4 or zstd")
	timeout := fs.Duration("timeout", 30*time.Second, "fail a record not acknowledged within `D`")
	maxBytes := fs.Int("max-message-bytes", 0, fmt.Sprintf("the client's limit on a record batch, in `BYTES` (max.request.size; default %d, or the --command-config value); the topic's max.message.bytes is the broker's", defaultMessageBytes))
	pos, err := parseArgs(fs, args)
	if err != nil {
		return produceFlags{}, err
	}
	if err := wantArgs(fs, pos, "TOPIC"); err != nil {
		return produceFlags{}, err
	}
	f := produceFlags{topic: pos[0], sep: *sep, acks: *acks, timeout: *timeout}
	switch *acks {
	case "all", "-1", "1", "0":
	default:
		return f, usagef(fs, "--acks %q: want all, 1 or 0", *acks)
	}
	codec, ok := codecs[*compression]
	if !ok {
		return f, usagef(fs, "--compression %q: want none, gzip, snappy, lz4 or zstd", *compression)
	}
	f.codec = codec
	switch {
	case *partition < -1 || *partition > 1<<31-1:
		return f, usagef(fs, "--partition %d is out of range", *partition)
	case *timeout <= 0:
		return f, usagef(fs, "--timeout must be positive")
	case *maxBytes != 0 && (*maxBytes < minMessageBytes || *maxBytes > maxMessageBytes):
		return f, usagef(fs, "--max-message-bytes %d: want %d to %d", *maxBytes, minMessageBytes, maxMessageBytes)
	}
	f.partition = int32(*partition)
	f.maxMessageBytes = int32(*maxBytes)
	if f.maxMessageBytes == 0 {
		props, err := g.props()
		if err != nil {
			return f, err
		}
		f.maxMessageBytes = cmp.Or(props.maxRequestSize, defaultMessageBytes)
	}
	return f, nil
}

// runProduce writes each line of standard input (without its "\n") to the
// topic as one record. With --key-separator the text before the first
// separator is the key and the rest the value; without it records have no
// key. Records go to --partition, or else are partitioned by key as Kafka's
// Java client does (murmur2), keyless ones spread in sticky batches. It
// reports the number of records written on standard error.
func runProduce(ctx context.Context, e env, g *globals, args []string) error {
	f, err := parseProduce(e, g, args)
	if err != nil {
		return err
	}
	return produce(ctx, e, g, f)
}

// produceOpts are the client options for f.
func (f produceFlags) opts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(f.topic),
		// As Kafka's producers do: a broker with auto-creation on
		// creates the topic on first use.
		kgo.AllowAutoTopicCreation(),
		kgo.RecordDeliveryTimeout(f.timeout),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.ProducerBatchCompression(f.codec),
		kgo.ProducerBatchMaxBytes(f.maxMessageBytes),
		// A request carries at least one whole batch.
		kgo.BrokerMaxWriteBytes(max(100<<20, f.maxMessageBytes+(1<<20))),
	}
	switch f.acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	}
	if f.partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	return opts
}

// produce writes standard input's lines as f says.
func produce(ctx context.Context, e env, g *globals, f produceFlags) error {
	topic := f.topic
	cl, err := newClient(g, f.opts()...)
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
				firstErr = fmt.Errorf("record at line %d: %w", r.Context.Value(lineKey{}), f.explain(r, err))
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
		if f.sep != "" {
			k, v, ok := bytes.Cut(in.text, []byte(f.sep))
			if !ok {
				readErr = fmt.Errorf("line %d has no key separator %q", line, f.sep)
				break
			}
			r.Key, r.Value = k, v
		}
		if f.partition >= 0 {
			r.Partition = f.partition
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
	fmt.Fprintf(e.stderr, "produced %s to %s\n", plural(int(sent.Load()), "record"), topic)

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

// explain says what to do about a record's error: create a missing topic,
// or raise the limit that refused a record too large. franz-go fails a
// record that cannot fit a batch of --max-message-bytes before sending it,
// and passes on the broker's MESSAGE_TOO_LARGE for a batch it sent, with
// the batch's compressed size.
func (f produceFlags) explain(r *kgo.Record, err error) error {
	if errors.Is(err, kerr.UnknownTopicOrPartition) && f.partition < 0 {
		return missingTopic(f.topic)
	}
	if !errors.Is(err, kerr.MessageTooLarge) {
		return err
	}
	size := len(r.Key) + len(r.Value)
	if !strings.Contains(err.Error(), ", compressed_bytes=") {
		return fmt.Errorf("%d bytes is over the client's limit of %d (--max-message-bytes, max.request.size): raise it", size, f.maxMessageBytes)
	}
	return fmt.Errorf("the broker refused %d bytes as too large (%w): raise the topic's max.message.bytes with `runnel topics alter %s --config max.message.bytes=N`", size, err, f.topic)
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
