package streamtest

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// rewrite is the flag that accepts new script output. Its name is
// qualified by the package, as a flag registered by a library must be:
// a plain -rewrite collides with other test libraries' flags (importing
// both panics with "flag redefined").
var rewrite = flag.Bool("streamtest.rewrite", false, "rewrite the expectations of streamtest script tests")

// Printer renders what a script prints; keys and values are bytes, so only
// the test knows their types.
type Printer struct {
	// Record renders one output record of topic. Default: key=value @ts
	// with key and value as strings (a tombstone as <nil>).
	Record func(topic string, r Record) string
	// Store renders the contents of a store, one line per entry, sorted.
	Store func(d *Driver, name string) ([]string, error)
}

// RunScript runs the script file path against the driver newDriver makes,
// failing t where the output differs from the expectations, or rewriting
// them with -streamtest.rewrite. A script is a sequence of commands, each a line with
// its arguments, a line "----", and the expected output up to a blank line:
//
//	pipe <topic> <key>=<value>@<ts> ...   pipe records (value <nil>: tombstone; key <nil>: null)
//	advance-time <ms>                     advance wall-clock time
//	commit                                flush caches
//	expect-output <topic>                 print (and consume) the topic's new records
//	print-store <name>                    print a store with Printer.Store
//	dropped                               print the dropped-record counters
//
// Lines starting with # outside expectations are comments.
func RunScript(t *testing.T, path string, newDriver func() (*Driver, error), p Printer) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDriver()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if p.Record == nil {
		p.Record = func(_ string, r Record) string {
			v := "<nil>"
			if r.Value != nil {
				v = string(r.Value)
			}
			return fmt.Sprintf("%s=%s @%d", r.Key, v, r.Timestamp)
		}
	}
	lines := strings.Split(string(data), "\n")
	var out strings.Builder
	failed := false
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			out.WriteString(lines[i] + "\n")
			continue
		}
		cmdLine := i + 1
		out.WriteString(line + "\n")
		i++
		if i >= len(lines) || strings.TrimSpace(lines[i]) != "----" {
			t.Fatalf("%s:%d: command without ---- line", path, cmdLine)
		}
		var want []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			want = append(want, lines[i])
		}
		got, err := runCommand(d, line, p)
		if err != nil {
			got = []string{"error: " + err.Error()}
		}
		out.WriteString("----\n")
		for _, g := range got {
			out.WriteString(g + "\n")
		}
		out.WriteString("\n")
		if !*rewrite && strings.Join(got, "\n") != strings.Join(want, "\n") {
			failed = true
			t.Errorf("%s:%d: %s\n got:\n%s\nwant:\n%s", path, cmdLine, line, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if failed {
		t.Logf("run with -streamtest.rewrite to accept the new output")
	}
}

func runCommand(d *Driver, line string, p Printer) ([]string, error) {
	f := strings.Fields(line)
	switch f[0] {
	case "pipe":
		if len(f) < 3 {
			return nil, fmt.Errorf("pipe <topic> <key>=<value>@<ts>...")
		}
		for _, kv := range f[2:] {
			k, rest, ok := strings.Cut(kv, "=")
			at := strings.LastIndex(rest, "@")
			if !ok || at < 0 {
				return nil, fmt.Errorf("bad record %q", kv)
			}
			ts, err := strconv.ParseInt(rest[at+1:], 10, 64)
			if err != nil {
				return nil, err
			}
			var kb, vb []byte
			if k != "<nil>" {
				kb = []byte(k)
			}
			if v := rest[:at]; v != "<nil>" {
				vb = []byte(v)
			}
			if err := d.Pipe(f[1], kb, vb, ts); err != nil {
				return nil, err
			}
		}
		return nil, nil
	case "advance-time":
		if len(f) != 2 {
			return nil, fmt.Errorf("advance-time <ms>")
		}
		ms, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return nil, err
		}
		return nil, d.AdvanceWallClock(ms)
	case "commit":
		return nil, d.Commit()
	case "expect-output":
		if len(f) != 2 {
			return nil, fmt.Errorf("expect-output <topic>")
		}
		var out []string
		for _, r := range d.ReadOutput(f[1]) {
			out = append(out, p.Record(f[1], r))
		}
		return out, nil
	case "print-store":
		if len(f) != 2 || p.Store == nil {
			return nil, fmt.Errorf("print-store <name> needs a Printer.Store")
		}
		out, err := p.Store(d, f[1])
		sort.Strings(out)
		return out, err
	case "dropped":
		var out []string
		for r, n := range d.Dropped() {
			out = append(out, fmt.Sprintf("%s: %d", r, n))
		}
		sort.Strings(out)
		return out, nil
	}
	return nil, fmt.Errorf("unknown command %q", f[0])
}
