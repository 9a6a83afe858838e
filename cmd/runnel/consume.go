package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const consumeSynopsis = "consume TOPIC [flags]"

// consumeFlags are runnel consume's arguments, checked.
type consumeFlags struct {
	topic       string
	group       string // "" reads without a group
	start       kgo.Offset
	partition   int32 // -1: every partition
	maxMessages int
	timeout     time.Duration
	isolation   kgo.IsolationLevel
	line        lineFormat
}

// lineFormat says how a record prints.
type lineFormat struct {
	key, value                                                  recordFormat
	printKey, printOffset, printPartition, printTime, printHdrs bool
	template                                                    []templatePart // --format; nil for the default layout
}

// parseConsume reads runnel consume's arguments.
func parseConsume(e env, g *globals, args []string) (consumeFlags, error) {
	fs := newFlagSet(e, g, "consume", consumeSynopsis, true)
	group := fs.String("group", "", "consume as a member of consumer group `GROUP`, committing its offsets (default: no group)")
	fromBeginning := fs.Bool("from-beginning", false, "start at the start of each partition (with --group: where the group has no offset; default: at the end)")
	offset := fs.Int64("offset", -1, "start at offset `N` in each partition read")
	partition := fs.Int("partition", -1, "read only partition `N` (default: all)")
	isolation := fs.String("isolation-level", "", "read_committed (skip aborted and open transactions) or read_uncommitted (default read_committed, or the --command-config value)")
	keyFormat := fs.String("key-format", "string", "how keys print: "+formatNames)
	valueFormat := fs.String("value-format", "string", "how values print: the same formats as --key-format")
	registryURL := fs.String("schema-registry-url", "", "schema registry `URL` (Confluent's API, or a broker's --registry-listen) for the avro format")
	printKey := fs.Bool("print-key", false, "print KEY<TAB> before each value")
	printOffset := fs.Bool("print-offset", false, "print PARTITION:OFFSET<TAB> before each record")
	printPartition := fs.Bool("print-partition", false, "print PARTITION<TAB> before each record (--print-offset prints it too)")
	printTime := fs.Bool("print-timestamp", false, "print CreateTime:MILLIS<TAB> before each record")
	printHeaders := fs.Bool("print-headers", false, "print KEY:VALUE,... (or NO_HEADERS)<TAB> before each record")
	format := fs.String("format", "", "print each record by `TEMPLATE` instead: %t topic, %p partition, %o offset, %k key, %s or %v value, %T timestamp, %h headers, %K and %S key and value sizes, %% a percent sign, \\n and \\t; a newline ends each record")
	maxMessages := fs.Int("max-messages", 0, "exit after `N` records (default: no limit); fewer before --timeout is an error")
	timeout := fs.Duration("timeout", 0, "exit when no record arrives for `D` (default: wait forever)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return consumeFlags{}, err
	}
	if err := wantArgs(fs, pos, "TOPIC"); err != nil {
		return consumeFlags{}, err
	}
	f := consumeFlags{topic: pos[0], group: *group, partition: int32(*partition), maxMessages: *maxMessages, timeout: *timeout}
	offsetSet := false
	fs.Visit(func(fl *flag.Flag) { offsetSet = offsetSet || fl.Name == "offset" })
	switch {
	case *fromBeginning && offsetSet:
		return f, usagef(fs, "--from-beginning and --offset exclude each other")
	case offsetSet && *offset < 0:
		return f, usagef(fs, "--offset %d is negative", *offset)
	case *partition < -1 || *partition > 1<<31-1:
		return f, usagef(fs, "--partition %d is out of range", *partition)
	case *maxMessages < 0:
		return f, usagef(fs, "--max-messages %d is negative", *maxMessages)
	case *timeout < 0:
		return f, usagef(fs, "--timeout %v is negative", *timeout)
	case *group != "" && (*partition >= 0 || offsetSet):
		// As Kafka's console consumer: a group member is assigned its
		// partitions and starts at the group's offsets.
		return f, usagef(fs, "--group excludes --partition and --offset")
	}
	f.start = kgo.NewOffset().AtEnd()
	switch {
	case *fromBeginning:
		f.start = kgo.NewOffset().AtStart()
	case offsetSet:
		f.start = kgo.NewOffset().At(*offset)
	}

	if *isolation == "" {
		props, err := g.props()
		if err != nil {
			return f, err
		}
		*isolation = props.isolation
	}
	switch *isolation {
	case "", "read_committed":
		f.isolation = kgo.ReadCommitted()
	case "read_uncommitted":
		f.isolation = kgo.ReadUncommitted()
	default:
		return f, usagef(fs, "--isolation-level %q: want %s", *isolation, strings.Join(isolationLevels, " or "))
	}

	f.line = lineFormat{printKey: *printKey, printOffset: *printOffset, printPartition: *printPartition, printTime: *printTime, printHdrs: *printHeaders}
	parse := func(name string) (recordFormat, error) {
		if name == "avro" {
			return avroFormat(*registryURL)
		}
		return parseFormat(name)
	}
	if f.line.key, err = parse(*keyFormat); err != nil {
		return f, usagef(fs, "--key-format: %v", err)
	}
	if f.line.value, err = parse(*valueFormat); err != nil {
		return f, usagef(fs, "--value-format: %v", err)
	}
	if *format != "" {
		if f.line.template, err = parseTemplate(*format); err != nil {
			return f, usagef(fs, "--format: %v", err)
		}
	}
	return f, nil
}

// runConsume prints a topic's records, one a line: by default the value,
// preceded by what the --print-* flags ask for, or as --format says. It
// reads from the end of each partition unless --from-beginning or
// --offset says otherwise, without a group unless --group names one, until
// --max-messages records were printed, no record arrived for --timeout, or
// it is interrupted; then it reports the count on standard error.
func runConsume(ctx context.Context, e env, g *globals, args []string) error {
	f, err := parseConsume(e, g, args)
	if err != nil {
		return err
	}
	return consume(ctx, e, g, f)
}

// consume reads and prints as f says.
func consume(ctx context.Context, e env, g *globals, f consumeFlags) error {
	// Check the topic and partition first: a consumer waits quietly for
	// a topic that does not exist, which helps nobody at a terminal.
	cl, err := newClient(g)
	if err != nil {
		return err
	}
	defer func() { cl.Close() }()
	if err := checkPartition(ctx, kadm.NewClient(cl), f.topic, int(f.partition)); err != nil {
		return err
	}
	cl.Close()

	// The reset offset also applies when the start is out of range: an
	// --offset past a partition's end waits at the end, one below its
	// start begins at the start.
	opts := []kgo.Opt{kgo.ConsumeResetOffset(f.start), kgo.FetchIsolationLevel(f.isolation)}
	switch {
	case f.partition >= 0:
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			f.topic: {f.partition: f.start},
		}))
	case f.group != "":
		opts = append(opts, kgo.ConsumeTopics(f.topic), kgo.ConsumerGroup(f.group))
	default:
		opts = append(opts, kgo.ConsumeTopics(f.topic))
	}
	if cl, err = newClient(g, opts...); err != nil {
		return err
	}
	if f.group != "" {
		defer func() {
			// What was printed is consumed: commit it before leaving,
			// even when interrupted.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := cl.CommitUncommittedOffsets(cctx); err != nil {
				fmt.Fprintf(e.stderr, "runnel consume: commit offsets of group %s: %v\n", f.group, err)
			}
		}()
	}

	out := bufio.NewWriterSize(e.stdout, 64<<10)
	count := 0
	defer func() {
		fmt.Fprintf(e.stderr, "consumed %s from %s\n", plural(count, "record"), f.topic)
	}()
	for f.maxMessages == 0 || count < f.maxMessages {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if f.timeout > 0 {
			pctx, cancel = context.WithTimeout(ctx, f.timeout)
		}
		want := -1
		if f.maxMessages > 0 {
			want = f.maxMessages - count
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
		var printErr error
		fetches.EachRecord(func(r *kgo.Record) {
			if printErr != nil {
				return
			}
			if printErr = f.line.print(out, r); printErr == nil {
				n++
			}
		})
		count += n
		if err := out.Flush(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if printErr != nil {
			return printErr
		}
		if n == 0 && pctx.Err() != nil {
			// --timeout passed with nothing new.
			if f.maxMessages > 0 {
				return fmt.Errorf("timed out after %v waiting for records: got %d of %d", f.timeout, count, f.maxMessages)
			}
			return nil
		}
	}
	return nil
}

// print writes one record as the line format says.
func (l lineFormat) print(w *bufio.Writer, r *kgo.Record) error {
	key, err := l.decode(l.key, r.Key)
	if err != nil {
		return fmt.Errorf("partition %d offset %d: key %w; choose another --key-format", r.Partition, r.Offset, err)
	}
	value, err := l.decode(l.value, r.Value)
	if err != nil {
		return fmt.Errorf("partition %d offset %d: value %w; choose another --value-format", r.Partition, r.Offset, err)
	}
	if l.template != nil {
		for _, part := range l.template {
			w.WriteString(part.expand(r, key, value))
		}
		return nil
	}
	if l.printTime {
		fmt.Fprintf(w, "CreateTime:%d\t", r.Timestamp.UnixMilli())
	}
	switch {
	case l.printOffset:
		fmt.Fprintf(w, "%d:%d\t", r.Partition, r.Offset)
	case l.printPartition:
		fmt.Fprintf(w, "%d\t", r.Partition)
	}
	if l.printHdrs {
		w.WriteString(headersText(r.Headers))
		w.WriteByte('\t')
	}
	if l.printKey {
		w.WriteString(key)
		w.WriteByte('\t')
	}
	w.WriteString(value)
	w.WriteByte('\n')
	return nil
}

// decode prints b with format; a null prints as "null", as Kafka's console
// consumer prints it.
func (l lineFormat) decode(format recordFormat, b []byte) (string, error) {
	if b == nil {
		return "null", nil
	}
	return format(b)
}

// headersText prints headers as KEY:VALUE,..., or NO_HEADERS.
func headersText(hs []kgo.RecordHeader) string {
	if len(hs) == 0 {
		return "NO_HEADERS"
	}
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.Key + ":" + string(h.Value)
	}
	return strings.Join(parts, ",")
}

// templatePart is a literal or one %-field of a --format template.
type templatePart struct {
	literal string
	field   byte // 0 for a literal
}

// templateFields are the %-letters --format knows.
const templateFields = "tpokvsThKS"

// parseTemplate reads a --format template; each record ends with a
// newline, written unless the template ends with one.
func parseTemplate(s string) ([]templatePart, error) {
	var parts []templatePart
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, templatePart{literal: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c != '%' && c != '\\') || i+1 == len(s) {
			if c == '%' || c == '\\' {
				return nil, fmt.Errorf("template %q ends with a lone %c", s, c)
			}
			lit.WriteByte(c)
			continue
		}
		i++
		n := s[i]
		switch {
		case c == '\\' && n == 'n':
			lit.WriteByte('\n')
		case c == '\\' && n == 't':
			lit.WriteByte('\t')
		case c == '\\' && n == '\\':
			lit.WriteByte('\\')
		case c == '\\':
			return nil, fmt.Errorf("unknown escape \\%c; want \\n, \\t or \\\\", n)
		case n == '%':
			lit.WriteByte('%')
		case strings.IndexByte(templateFields, n) >= 0:
			flush()
			parts = append(parts, templatePart{field: n})
		default:
			return nil, fmt.Errorf("unknown field %%%c; want one of %%t %%p %%o %%k %%s %%v %%T %%h %%K %%S %%%%", n)
		}
	}
	if !strings.HasSuffix(s, `\n`) {
		lit.WriteByte('\n')
	}
	flush()
	return parts, nil
}

// expand prints the part for a record whose key and value printed as key
// and value.
func (p templatePart) expand(r *kgo.Record, key, value string) string {
	switch p.field {
	case 0:
		return p.literal
	case 't':
		return r.Topic
	case 'p':
		return strconv.Itoa(int(r.Partition))
	case 'o':
		return strconv.FormatInt(r.Offset, 10)
	case 'k':
		return key
	case 'v', 's':
		return value
	case 'T':
		return strconv.FormatInt(r.Timestamp.UnixMilli(), 10)
	case 'h':
		return headersText(r.Headers)
	case 'K':
		return strconv.Itoa(len(r.Key))
	case 'S':
		return strconv.Itoa(len(r.Value))
	}
	return ""
}

// checkPartition fails when the topic, or the one partition asked for, does
// not exist, saying how to make it.
func checkPartition(ctx context.Context, adm *kadm.Client, topic string, partition int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	topics, err := adm.ListTopicsWithInternal(ctx, topic)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	td, ok := topics[topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return missingTopic(topic)
	}
	if td.Err != nil {
		return fmt.Errorf("topic %s: %w", topic, td.Err)
	}
	if partition >= 0 {
		if _, ok := td.Partitions[int32(partition)]; !ok {
			return fmt.Errorf("topic %s has %s, no partition %d", topic, plural(len(td.Partitions), "partition"), partition)
		}
	}
	return nil
}

// missingTopic is the error for a topic that does not exist, saying how to
// create it.
func missingTopic(topic string) error {
	return fmt.Errorf("topic %s does not exist (%w); create it with `runnel topics create %s`", topic, kerr.UnknownTopicOrPartition, topic)
}
