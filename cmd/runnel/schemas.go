package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

const schemasSynopsis = `schemas SUBCOMMAND [ARGS...] [--schema-registry-url URL]

subcommands:
  list [--deleted]
  get SUBJECT [--version V]
  register SUBJECT (--schema TEXT | --schema-file FILE)
  compat SUBJECT (--schema TEXT | --schema-file FILE) [--version V]
  delete SUBJECT [--version V] [--permanent]
  config [SUBJECT] [--set LEVEL]`

// defaultRegistryURL is where the schemas commands look without
// --schema-registry-url or $RUNNEL_SCHEMA_REGISTRY_URL: Confluent's port.
const defaultRegistryURL = "http://127.0.0.1:8081"

// runSchemas dispatches the schemas subcommands, clients of a schema
// registry's REST API (a broker's --registry-listen, or Confluent's).
func runSchemas(ctx context.Context, e env, g *globals, args []string) error {
	usage := func() { fmt.Fprintf(e.stderr, "usage: runnel %s\n", schemasSynopsis) }
	if len(args) == 0 {
		return &usageError{msg: "missing subcommand", usage: usage}
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "list", "get", "register", "compat", "delete", "config":
		return schemasRun(ctx, e, g, sub, rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(e.stdout, "usage: runnel %s\n", schemasSynopsis)
		return flag.ErrHelp
	}
	return &usageError{msg: fmt.Sprintf("unknown subcommand %q", sub), usage: usage}
}

func schemasRun(ctx context.Context, e env, g *globals, sub string, args []string) error {
	fs := newFlagSet(e, g, "schemas "+sub, schemasSynopsis, false)
	url := fs.String("schema-registry-url", "", "schema registry `URL` (default $RUNNEL_SCHEMA_REGISTRY_URL, else "+defaultRegistryURL+")")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	deleted := fs.Bool("deleted", false, "list, get: include soft-deleted subjects and versions")
	version := fs.String("version", "", "get, compat, delete: the version `V`, a number or latest")
	schemaText := fs.String("schema", "", "register, compat: the schema `TEXT`")
	schemaFile := fs.String("schema-file", "", "register, compat: read the schema from `FILE` (- for standard input)")
	permanent := fs.Bool("permanent", false, "delete: delete permanently what was soft-deleted before")
	set := fs.String("set", "", "config: set the compatibility `LEVEL` (NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	want := map[string][]string{"list": nil, "get": {"SUBJECT"}, "register": {"SUBJECT"}, "compat": {"SUBJECT"}, "delete": {"SUBJECT"}}
	if sub == "config" {
		if len(pos) > 1 {
			return usagef(fs, "config takes at most one SUBJECT")
		}
	} else if err := wantArgs(fs, pos, want[sub]...); err != nil {
		return err
	}
	subject := ""
	if len(pos) > 0 {
		subject = pos[0]
	}
	v := -1
	if *version != "" && *version != "latest" {
		if v, err = strconv.Atoi(*version); err != nil || v < 1 {
			return usagef(fs, "--version %q: want a positive number or latest", *version)
		}
	}
	var schema string
	if sub == "register" || sub == "compat" {
		switch {
		case (*schemaText == "") == (*schemaFile == ""):
			return usagef(fs, "give the schema with one of --schema and --schema-file")
		case *schemaText != "":
			schema = *schemaText
		default:
			var b []byte
			if *schemaFile == "-" {
				b, err = io.ReadAll(e.stdin)
			} else {
				b, err = os.ReadFile(*schemaFile)
			}
			if err != nil {
				return err
			}
			schema = string(b)
		}
	}
	if *url == "" {
		*url = os.Getenv("RUNNEL_SCHEMA_REGISTRY_URL")
	}
	if *url == "" {
		*url = defaultRegistryURL
	}
	cl, err := sr.NewClient(sr.URLs(*url))
	if err != nil {
		return usagef(fs, "--schema-registry-url: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	switch sub {
	case "list":
		if *deleted {
			ctx = sr.WithParams(ctx, sr.ShowDeleted)
		}
		subjects, err := cl.Subjects(ctx)
		if err != nil {
			return registryErr(err)
		}
		for _, s := range subjects {
			fmt.Fprintln(e.stdout, s)
		}
	case "get":
		if *deleted {
			ctx = sr.WithParams(ctx, sr.ShowDeleted)
		}
		s, err := cl.SchemaByVersion(ctx, subject, v)
		if err != nil {
			return registryErr(err)
		}
		b, _ := json.Marshal(s)
		fmt.Fprintln(e.stdout, string(b))
	case "register":
		s, err := cl.CreateSchema(ctx, subject, sr.Schema{Schema: schema})
		if err != nil {
			return registryErr(err)
		}
		fmt.Fprintf(e.stdout, "id %d version %d\n", s.ID, s.Version)
	case "compat":
		res, err := cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), subject, v, sr.Schema{Schema: schema})
		if err != nil {
			return registryErr(err)
		}
		if !res.Is {
			return fmt.Errorf("incompatible: %s", strings.Join(res.Messages, "; "))
		}
		fmt.Fprintln(e.stdout, "compatible")
	case "delete":
		how := sr.SoftDelete
		if *permanent {
			how = sr.HardDelete
		}
		if *version == "" {
			vs, err := cl.DeleteSubject(ctx, subject, how)
			if err != nil {
				return registryErr(err)
			}
			fmt.Fprintf(e.stdout, "deleted versions %v\n", vs)
			return nil
		}
		if err := cl.DeleteSchema(ctx, subject, v, how); err != nil {
			return registryErr(err)
		}
		fmt.Fprintf(e.stdout, "deleted version %s\n", *version)
	case "config":
		if *set != "" {
			var level sr.CompatibilityLevel
			if err := level.UnmarshalText([]byte(strings.ToUpper(*set))); err != nil {
				return usagef(fs, "--set %q: %v", *set, err)
			}
			res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: level}, subject)
			if res[0].Err != nil {
				return registryErr(res[0].Err)
			}
		}
		res := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), subject)
		if res[0].Err != nil {
			return registryErr(res[0].Err)
		}
		fmt.Fprintln(e.stdout, res[0].Level)
	}
	return nil
}

// registryErr says what the registry answered, with its error code.
func registryErr(err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) && re.ErrorCode != 0 {
		return fmt.Errorf("registry: %d %s", re.ErrorCode, re.Message)
	}
	return err
}
