// Command runnel runs a Runnel broker and talks to any Kafka-protocol
// cluster: it creates and inspects topics, produces lines from standard input,
// prints consumed records, and shows consumer groups with their lag.
//
// Usage:
//
//	runnel [--brokers HOST:PORT[,HOST:PORT...]] COMMAND [ARGS...]
//
// Commands:
//
//	broker    run a broker
//	topics    create, list, describe or delete topics
//	produce   write lines from standard input to a topic
//	consume   print a topic's records
//	groups    list, describe or delete consumer groups; reset their offsets
//	reset     reset a stream application to reprocess its input
//
// Every command takes -h for its flags. The seed brokers default to
// $RUNNEL_BROKERS, or 127.0.0.1:9092. Exit status is 0 on success, 1 when the
// command failed, and 2 when it was called wrongly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const defaultBrokers = "127.0.0.1:9092"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Args[1:], env{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
		stopSignals: func() {
			// A second signal after the first one kills the process
			// the default way, should a clean shutdown hang.
			stop()
		},
	})
	os.Exit(code)
}

// env is what a command sees of the process, so tests run commands in
// process with their own streams.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// stopSignals, when set, restores default signal handling once a
	// command has begun shutting down on the first signal.
	stopSignals func()
}

// usageError is a command called wrongly: its message is printed, then the
// command's usage, and the exit status is 2.
type usageError struct {
	msg   string
	usage func() // prints the usage, when not printed already
}

func (e *usageError) Error() string { return e.msg }

// usagef returns a usage error for the command whose flags are fs.
func usagef(fs *flag.FlagSet, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), usage: fs.Usage}
}

// command is one subcommand: it parses its own arguments with fs and runs.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, g *globals, args []string) error
}

var commands = []command{
	{"broker", "run a broker", runBroker},
	{"cluster", "run a local cluster of brokers for development", runCluster},
	{"topics", "create, list, describe or delete topics", runTopics},
	{"produce", "write lines from standard input to a topic", runProduce},
	{"consume", "print a topic's records", runConsume},
	{"groups", "list, describe or delete consumer groups; reset their offsets", runGroups},
	{"reset", "reset a stream application to reprocess its input", runReset},
}

// globals are the flags that come before the command name. Client commands
// also accept --brokers after their name.
type globals struct {
	brokers string
}

func mainUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: runnel [--brokers HOST:PORT[,...]] COMMAND [ARGS...]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nglobal flags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nRun 'runnel COMMAND -h' for a command's flags.\n")
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, e env) int {
	if e.getenv == nil {
		e.getenv = func(string) string { return "" }
	}
	g := &globals{brokers: defaultBrokers}
	if v := e.getenv("RUNNEL_BROKERS"); v != "" {
		g.brokers = v
	}
	fs := flag.NewFlagSet("runnel", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.brokers, "brokers", g.brokers, "seed brokers, comma-separated (env RUNNEL_BROKERS)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			mainUsage(e.stdout, fs)
			return exitOK
		}
		fmt.Fprintf(e.stderr, "runnel: %v\n", err)
		mainUsage(e.stderr, fs)
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(e.stderr, "runnel: no command given\n")
		mainUsage(e.stderr, fs)
		return exitUsage
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		mainUsage(e.stdout, fs)
		return exitOK
	}
	for _, c := range commands {
		if c.name != name {
			continue
		}
		err := c.run(ctx, e, g, rest)
		var ue *usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ue):
			fmt.Fprintf(e.stderr, "runnel %s: %s\n", name, ue.msg)
			if ue.usage != nil {
				ue.usage()
			}
			return exitUsage
		default:
			fmt.Fprintf(e.stderr, "runnel %s: %v\n", name, err)
			return exitFailure
		}
	}
	fmt.Fprintf(e.stderr, "runnel: unknown command %q\n", name)
	mainUsage(e.stderr, fs)
	return exitUsage
}

// newFlagSet returns a flag set for a command whose usage line is synopsis.
// Client commands get --brokers, defaulting to the global value.
func newFlagSet(e env, g *globals, name, synopsis string, client bool) *flag.FlagSet {
	fs := flag.NewFlagSet("runnel "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if client {
		fs.StringVar(&g.brokers, "brokers", g.brokers, "seed brokers, comma-separated (env RUNNEL_BROKERS)")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: runnel %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses flags that may come before, between or after positional
// arguments (Go's flag package stops at the first positional one), and
// returns the positional arguments. After "--" everything is positional.
// Errors are usage errors; -h gives flag.ErrHelp with the usage printed.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			// The flag package printed the error and the usage.
			return nil, &usageError{msg: "invalid arguments"}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// wantArgs checks the number of positional arguments.
func wantArgs(fs *flag.FlagSet, pos []string, names ...string) error {
	if len(pos) == len(names) {
		return nil
	}
	if len(pos) < len(names) {
		return usagef(fs, "missing %s", names[len(pos)])
	}
	return usagef(fs, "unexpected argument %q", pos[len(names)])
}

// newClient returns a franz-go client for the global seed brokers.
func newClient(g *globals, opts ...kgo.Opt) (*kgo.Client, error) {
	var seeds []string
	for s := range strings.SplitSeq(g.brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return nil, &usageError{msg: "--brokers is empty"}
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("runnel-cli"),
		kgo.DialTimeout(5 * time.Second),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return cl, nil
}

// listFlag collects a repeated string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
