package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

const usersSynopsis = `users SUBCOMMAND [ARGS...]

subcommands:
  add --user NAME --password PASSWORD|- [--mechanism M[,M]] [--iterations N]   (alias create)
  list [--user NAME]
  delete --user NAME [--mechanism M[,M]]`

// runUsers dispatches the users subcommands: the SCRAM users kept in the
// cluster's metadata (AlterUserScramCredentials, as kafka-configs
// --entity-type users does).
func runUsers(ctx context.Context, e env, g *globals, args []string) error {
	usage := func() { fmt.Fprintf(e.stderr, "usage: runnel %s\n", usersSynopsis) }
	if len(args) == 0 {
		return &usageError{msg: "missing subcommand", usage: usage}
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "add", "create":
		return usersAdd(ctx, e, g, rest)
	case "list":
		return usersList(ctx, e, g, rest)
	case "delete":
		return usersDelete(ctx, e, g, rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(e.stdout, "usage: runnel %s\n", usersSynopsis)
		return flag.ErrHelp
	}
	return &usageError{msg: fmt.Sprintf("unknown subcommand %q", sub), usage: usage}
}

var scramMechanisms = map[string]kadm.ScramMechanism{"SCRAM-SHA-256": kadm.ScramSha256, "SCRAM-SHA-512": kadm.ScramSha512}

// userFlags adds --user (alias --entity-name, kafka-configs' name) and
// --mechanism to fs.
func userFlags(fs *flag.FlagSet, mechDefault, mechUsage string) (*string, *string) {
	user := fs.String("user", "", "the user `NAME`")
	fs.StringVar(user, "entity-name", "", "alias of --user")
	mech := fs.String("mechanism", mechDefault, mechUsage)
	return user, mech
}

// parseMechanisms reads a comma-separated list of SCRAM mechanisms.
func parseMechanisms(fs *flag.FlagSet, s string) ([]kadm.ScramMechanism, error) {
	var out []kadm.ScramMechanism
	for m := range strings.SplitSeq(s, ",") {
		mech, ok := scramMechanisms[strings.ToUpper(strings.TrimSpace(m))]
		if !ok {
			return nil, usagef(fs, "--mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", m)
		}
		out = append(out, mech)
	}
	return out, nil
}

func usersAdd(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "users add", "users add --user NAME --password PASSWORD|- [--mechanism M[,M]] [--iterations N]", true)
	user, mech := userFlags(fs, "SCRAM-SHA-256,SCRAM-SHA-512", "the SCRAM `MECHANISMS` to set the password for, comma-separated")
	password := fs.String("password", "", "the `PASSWORD`; - reads it from the first line of standard input")
	iterations := fs.Int("iterations", 4096, "SCRAM iterations, 4096 to 16384")
	timeout := adminFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos); err != nil {
		return err
	}
	if *user == "" {
		return usagef(fs, "missing --user")
	}
	mechs, err := parseMechanisms(fs, *mech)
	if err != nil {
		return err
	}
	if *iterations < 4096 || *iterations > 16384 {
		return usagef(fs, "--iterations %d: want 4096 to 16384", *iterations)
	}
	pass := *password
	if pass == "-" {
		sc := bufio.NewScanner(e.stdin)
		if sc.Scan() {
			pass = strings.TrimRight(sc.Text(), "\r")
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read the password: %w", err)
		}
	}
	if pass == "" {
		return usagef(fs, "missing --password (or an empty one)")
	}
	adm, ctx, done, err := openAdmin(ctx, g, *timeout)
	if err != nil {
		return err
	}
	defer done()
	var ups []kadm.UpsertSCRAM
	for _, m := range mechs {
		ups = append(ups, kadm.UpsertSCRAM{User: *user, Mechanism: m, Iterations: int32(*iterations), Password: pass})
	}
	if err := alterUsers(ctx, adm, nil, ups); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "set the %s credentials of user %s\n", *mech, *user)
	return nil
}

func usersDelete(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "users delete", "users delete --user NAME [--mechanism M[,M]]", true)
	user, mech := userFlags(fs, "", "only these SCRAM `MECHANISMS` (default every one the user has)")
	timeout := adminFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos); err != nil {
		return err
	}
	if *user == "" {
		return usagef(fs, "missing --user")
	}
	var mechs []kadm.ScramMechanism
	if *mech != "" {
		if mechs, err = parseMechanisms(fs, *mech); err != nil {
			return err
		}
	}
	adm, ctx, done, err := openAdmin(ctx, g, *timeout)
	if err != nil {
		return err
	}
	defer done()
	if mechs == nil {
		described, err := adm.DescribeUserSCRAMs(ctx, *user)
		if err != nil {
			return fmt.Errorf("describe user %s: %w", *user, err)
		}
		d := described[*user]
		if d.Err != nil {
			return fmt.Errorf("user %s: %w", *user, d.Err)
		}
		for _, c := range d.CredInfos {
			mechs = append(mechs, c.Mechanism)
		}
	}
	var dels []kadm.DeleteSCRAM
	for _, m := range mechs {
		dels = append(dels, kadm.DeleteSCRAM{User: *user, Mechanism: m})
	}
	if err := alterUsers(ctx, adm, dels, nil); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "deleted user %s\n", *user)
	return nil
}

// alterUsers sends one AlterUserScramCredentials and returns the first
// user's error, with the broker's message.
func alterUsers(ctx context.Context, adm *kadm.Client, dels []kadm.DeleteSCRAM, ups []kadm.UpsertSCRAM) error {
	res, err := adm.AlterUserSCRAMs(ctx, dels, ups)
	if err != nil {
		return fmt.Errorf("alter users: %w", err)
	}
	for _, r := range res.Sorted() {
		if r.Err != nil {
			if r.ErrMessage != "" {
				return fmt.Errorf("user %s: %w: %s", r.User, r.Err, r.ErrMessage)
			}
			return fmt.Errorf("user %s: %w", r.User, r.Err)
		}
	}
	return nil
}

func usersList(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "users list", "users list [--user NAME]", true)
	user := fs.String("user", "", "only this user `NAME`")
	fs.StringVar(user, "entity-name", "", "alias of --user")
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
	var names []string
	if *user != "" {
		names = []string{*user}
	}
	described, err := adm.DescribeUserSCRAMs(ctx, names...)
	if err != nil {
		return fmt.Errorf("describe users: %w", err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "User\tMechanism\tIterations")
	for _, d := range described.Sorted() {
		if errors.Is(d.Err, kerr.ResourceNotFound) {
			return fmt.Errorf("user %s: no SCRAM credentials", d.User)
		}
		if d.Err != nil {
			return fmt.Errorf("user %s: %w", d.User, d.Err)
		}
		for _, c := range d.CredInfos {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", d.User, c.Mechanism, c.Iterations)
		}
	}
	return tw.Flush()
}
