// Command runnel runs a Runnel broker and talks to any Kafka-protocol
// cluster: it creates and inspects topics, produces lines from standard input,
// prints consumed records, and shows consumer groups with their lag.
//
// Usage:
//
//	runnel [--bootstrap-server HOST:PORT[,HOST:PORT...]] COMMAND [ARGS...]
//
// Commands:
//
//	broker    run a broker
//	topics    create, list, describe or delete topics
//	produce   write lines from standard input to a topic
//	consume   print a topic's records
//	groups    list, describe or delete consumer groups; reset their offsets
//	reset     reset a stream application to reprocess its input
//	acls      add, list or remove ACLs
//	schemas   talk to a schema registry
//	console   serve a web console for the cluster
//	users     add, list or delete SCRAM users
//
// Every command takes -h for its flags and a description; "runnel help" is
// the reference. The seed brokers default to $RUNNEL_BOOTSTRAP_SERVER, or
// 127.0.0.1:9092. Exit status is 0 on success, 1 when the command failed,
// and 2 when it was called wrongly.
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
	{"acls", "add, list or remove ACLs (the authorizer's, as kafka-acls)", runACLs},
	{"schemas", "list, get, register, check, delete schemas and set compatibility in a schema registry", runSchemas},
	{"console", "serve a web console for the cluster", runConsole},
	{"users", "add, list or delete SCRAM users", runUsers},
}

// globals are the client flags, before the command name or after it.
type globals struct {
	// bootstrap is the seed brokers: --bootstrap-server (or its alias
	// --brokers), else $RUNNEL_BOOTSTRAP_SERVER or $RUNNEL_BROKERS, else
	// bootstrap.servers from --command-config, else defaultBrokers.
	bootstrap bootstrapFlag
	// commandConfig is the --command-config properties file, "" for none.
	commandConfig string
}

// bootstrapFlag is the seed brokers and where they came from, so that a
// --command-config file does not override a flag or the environment.
type bootstrapFlag struct {
	value    string
	explicit bool // from a flag or the environment
}

func (f *bootstrapFlag) String() string { return f.value }
func (f *bootstrapFlag) Set(v string) error {
	f.value, f.explicit = v, true
	return nil
}

// clientFlags adds the flags every client command takes to fs.
func clientFlags(fs *flag.FlagSet, g *globals) {
	fs.Var(&g.bootstrap, "bootstrap-server", "seed brokers `HOST:PORT[,HOST:PORT...]` (alias --brokers; env RUNNEL_BOOTSTRAP_SERVER; default "+defaultBrokers+")")
	fs.Var(&g.bootstrap, "brokers", "alias of --bootstrap-server")
	fs.StringVar(&g.commandConfig, "command-config", g.commandConfig, "client properties `FILE` (KEY=VALUE lines: bootstrap.servers, client.id, max.request.size, isolation.level, security.protocol, sasl.mechanism, sasl.jaas.config, ssl.truststore.location, ssl.keystore.location, ...; see the README's Security section)")
}

// hiddenFlags are aliases the flag listings leave out: the flag they
// stand for names them.
var hiddenFlags = map[string]bool{"brokers": true}

// printFlags lists fs's flags in one style, "--name VALUE", each default
// once: from the usage text when it gives one, else from the flag.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if hiddenFlags[f.Name] {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		if def := f.DefValue; !strings.Contains(usage, "default") && def != "" && def != "false" && def != "0" && def != "-1" && def != "[]" && def != "0s" {
			usage += fmt.Sprintf(" (default %s)", def)
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
	})
}

func mainUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: runnel [--bootstrap-server HOST:PORT[,...]] COMMAND [ARGS...]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nclient flags (before or after the command):\n")
	printFlags(w, fs)
	fmt.Fprintf(w, "%s", mainHelp)
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, e env) int {
	if e.getenv == nil {
		e.getenv = func(string) string { return "" }
	}
	g := &globals{bootstrap: bootstrapFlag{value: defaultBrokers}}
	for _, name := range []string{"RUNNEL_BOOTSTRAP_SERVER", "RUNNEL_BROKERS"} {
		if v := e.getenv(name); v != "" {
			g.bootstrap = bootstrapFlag{value: v, explicit: true}
			break
		}
	}
	fs := flag.NewFlagSet("runnel", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	clientFlags(fs, g)
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
		if len(rest) > 0 {
			// runnel help COMMAND [SUBCOMMAND] is COMMAND's -h.
			name, rest = rest[0], append(rest[1:], "-h")
		} else {
			mainUsage(e.stdout, fs)
			printReference(e.stdout)
			return exitOK
		}
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
			msg := trimPrefixes(err.Error(), name)
			fmt.Fprintf(e.stderr, "runnel %s: %s\n", name, msg)
			return exitFailure
		}
	}
	fmt.Fprintf(e.stderr, "runnel: unknown command %q\n", name)
	mainUsage(e.stderr, fs)
	return exitUsage
}

// newFlagSet returns a flag set for a command whose usage line is synopsis.
// Client commands get the client flags, defaulting to the global values.
func newFlagSet(e env, g *globals, name, synopsis string, client bool) *flag.FlagSet {
	fs := flag.NewFlagSet("runnel "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if client {
		clientFlags(fs, g)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: runnel %s\n\nflags:\n", synopsis)
		printFlags(fs.Output(), fs)
		if h := commandHelp[name]; h != "" {
			fmt.Fprintf(fs.Output(), "\n%s", h)
		}
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

// newClient returns a franz-go client for the seed brokers and the
// --command-config properties.
func newClient(g *globals, opts ...kgo.Opt) (*kgo.Client, error) {
	props, err := g.props()
	if err != nil {
		return nil, err
	}
	bootstrap := g.bootstrap.value
	if !g.bootstrap.explicit && props.bootstrap != "" {
		bootstrap = props.bootstrap
	}
	var seeds []string
	for s := range strings.SplitSeq(bootstrap, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return nil, &usageError{msg: "--bootstrap-server is empty"}
	}
	clientID := "runnel-cli"
	if props.clientID != "" {
		clientID = props.clientID
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID(clientID),
		kgo.DialTimeout(5 * time.Second),
	}
	sec, err := props.security.opts()
	if err != nil {
		return nil, err
	}
	base = append(base, sec...)
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

// trimPrefixes drops the package prefixes an error of command name
// starts with, which "runnel NAME: " already says: the broker's
// "broker: ", the application's "stream: reset: " (or "runnel: reset: ").
func trimPrefixes(msg, name string) string {
	for _, p := range []string{"stream: reset: ", "runnel: reset: ", "stream: ", "runnel: ", name + ": "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

// referenceOrder is the order "runnel help" prints the commands in.
var referenceOrder = []string{
	"broker", "topics create", "topics describe", "topics alter", "topics delete-records",
	"produce", "consume", "groups list", "groups describe", "groups reset-offsets", "reset", "acls add", "acls list", "acls remove", "schemas", "console",
}

// printReference prints every command's description, the reference
// "runnel help" ends with.
func printReference(w io.Writer) {
	for _, name := range referenceOrder {
		fmt.Fprintf(w, "\nrunnel %s\n\n%s", name, indent(commandHelp[name]))
	}
}

// indent indents each non-empty line of s by two spaces.
func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "")
}

// isolationLevels are consume's --isolation-level values, Kafka's names.
var isolationLevels = []string{"read_committed", "read_uncommitted"}

// mainHelp ends runnel's usage; commandHelp ends each command's -h.
var mainHelp = "\nRun 'runnel COMMAND -h' for a command's flags and what it does.\n"

var commandHelp = map[string]string{}
