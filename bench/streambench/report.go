package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-dev/runnel"
)

// Targets of issue 7 on this 2-core machine.
const (
	maxEOSCost     = 0.15 // exactly-once costs at most 15% of at-least-once throughput
	maxRestartTime = 2 * time.Second
)

// table is a report table: a header and rows of cells.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// numeric reports whether every row's cell in column i is a number.
func (t *table) numeric(i int) bool {
	for _, r := range t.rows {
		if _, err := strconv.ParseFloat(r[i], 64); err != nil {
			return false
		}
	}
	return true
}

// text writes t in columns: numbers right-aligned, text left-aligned.
func (t *table) text(w io.Writer) {
	widths := make([]int, len(t.header))
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			if t.numeric(i) {
				fmt.Fprintf(w, "%*s  ", widths[i], c)
			} else {
				fmt.Fprintf(w, "%-*s  ", widths[i], c)
			}
		}
		fmt.Fprintln(w)
	}
}

// markdown writes t as a Markdown table, numbers right-aligned.
func (t *table) markdown(w io.Writer) {
	fmt.Fprintf(w, "| %s |\n|", strings.Join(t.header, " | "))
	for i := range t.header {
		if t.numeric(i) {
			fmt.Fprint(w, " ---: |")
		} else {
			fmt.Fprint(w, " --- |")
		}
	}
	fmt.Fprintln(w)
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%d", d.Milliseconds()) }

func guaranteeName(g runnel.Guarantee) string {
	if g == runnel.ExactlyOnce {
		return "exactly-once"
	}
	return "at-least-once"
}

// throughputTable: one row per app run.
func (b *bench) throughputTable() *table {
	t := &table{header: []string{"workload", "guarantee", "input records", "records processed", "Start ms", "first record ms", "all processed ms", "closed ms", "records/s", "commits", "cores used", "CPU µs/record", "alloc B/record", "live heap MB"}}
	for _, r := range b.throughputs {
		t.add(r.workload, guaranteeName(r.guarantee), fmt.Sprint(r.input), fmt.Sprint(r.processed), ms(r.started), ms(r.first),
			ms(r.done), ms(r.closed), fmt.Sprintf("%.0f", r.recordsPerSec()), fmt.Sprint(r.commits),
			fmt.Sprintf("%.2f", r.cpu.Seconds()/r.closed.Seconds()), fmt.Sprintf("%.1f", r.cpuPerRecord()),
			fmt.Sprintf("%.0f", r.allocPerRecord()), fmt.Sprintf("%.0f", float64(r.live)/1e6))
	}
	return t
}

// ratios returns, per workload measured under both guarantees, the line
// comparing them with the target.
func (b *bench) ratios() []string {
	var lines []string
	for i := 0; i+1 < len(b.throughputs); i += 2 {
		alo, eos := b.throughputs[i], b.throughputs[i+1]
		ratio := eos.recordsPerSec() / alo.recordsPerSec()
		verdict := "MET"
		if 1-ratio > maxEOSCost {
			verdict = "NOT MET"
		}
		lines = append(lines, fmt.Sprintf("%s: exactly-once/at-least-once = %.2f (exactly-once costs %.0f%%; target at most %.0f%%: %s)",
			alo.workload, ratio, (1-ratio)*100, maxEOSCost*100, verdict))
	}
	return lines
}

// restartTable: the restarted process's timeline.
func restartTable(r restartResult) *table {
	t := &table{header: []string{"ms since the process started", "event"}}
	for _, e := range r.events {
		what := e.name
		switch e.name {
		case "main":
			what = "main() runs (exec, Go runtime and package init)"
		case "started":
			what = "App.Start returned (embedded broker started, if any; topics checked, Pebble opened, clients created)"
		case "probe":
			what = "probe line produced by the app's process"
		case "first":
			what = "first record processed (the probe line)"
		case "second":
			what = "second record processed (the probe's word, through the repartition topic, into the store)"
		case "log":
			what = "log: " + e.detail
		}
		t.add(ms(e.at), what)
		if e.name == "second" {
			break
		}
	}
	return t
}

func restartVerdict(r restartResult) string {
	first, ok := hasEvent(r.events, "first")
	if !ok {
		return "restart: no record processed"
	}
	verdict := "MET"
	if first.at > maxRestartTime {
		verdict = "NOT MET"
	}
	return fmt.Sprintf("restart after SIGKILL with %d keys of state, %s: first new record processed %v after the process started (target under %v: %s); changelog records restored by the restarted instance: %d",
		r.keys, r.variant, first.at.Round(time.Millisecond), maxRestartTime, verdict, r.restored)
}

func restoreTable(r *restoreResult) *table {
	t := &table{header: []string{"keys", "changelog records restored", "MB fetched", "MB of keys+values", "restore ms", "MB/s fetched", "MB/s keys+values", "records/s", "Start to Running ms", "CPU s", "CPU s per GB of keys+values"}}
	secs := r.restoreTime().Seconds()
	t.add(fmt.Sprint(r.keys), fmt.Sprint(r.records), fmt.Sprintf("%.1f", r.bytes/1e6), fmt.Sprintf("%.1f", float64(r.payload)/1e6), ms(r.restoreTime()),
		fmt.Sprintf("%.1f", r.bytes/1e6/secs), fmt.Sprintf("%.1f", float64(r.payload)/1e6/secs), fmt.Sprintf("%.0f", float64(r.records)/secs), ms(r.first),
		fmt.Sprintf("%.2f", r.cpu.Seconds()), fmt.Sprintf("%.2f", r.cpu.Seconds()/(float64(r.payload)/1e9)))
	return t
}

func (b *bench) settings() []string {
	s := []string{
		fmt.Sprintf("machine: %d cores (%s), %s, %s/%s", runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH),
		fmt.Sprintf("broker: Runnel's broker in this process, configured as runnel.App's embedded broker; input topics of %d partitions, pre-produced by one franz-go producer before each timing", partitions),
		b.appsLine(),
	}
	if len(b.throughputs) > 0 {
		s = append(s,
			fmt.Sprintf("wordcount: %d lines of 3-7 words (10,000-word vocabulary), FlatMapValues, GroupBy word (repartition), Count", b.records),
			fmt.Sprintf("q5: %d bids keyed by auction id (10,000 auctions), %d per ms of event time, Count per auction in hopping windows of 10 s every 2 s", b.records, bidsPerMs),
			"q5-suppress-uncached: q5's input and count (1 s of grace), then Suppress(UntilWindowCloses), with CacheBytes(0)",
			"records/s: input records / (Start to Close: every record processed, then the last commit)",
			"CPU µs/record: this process's user+system CPU time (app and broker) over the same span, per input record; alloc B/record: heap bytes allocated over the same span per input record; live heap MB: live after the latest garbage collection when every record was processed")
	}
	return s
}

func (b *bench) appsLine() string {
	interval := "commit interval 30 s at-least-once, 100 ms exactly-once"
	if b.commitInterval > 0 {
		interval = fmt.Sprintf("commit interval %v under both guarantees (-commit-interval)", b.commitInterval)
	}
	workers := ""
	if b.workers > 1 {
		workers = fmt.Sprintf("; %d workers (-workers)", b.workers)
	}
	return "apps: runnel.App with the default options but the guarantee (" + interval + workers + "; 10 MiB record cache; Pebble state), each a new application id reading the same input from the start"
}

// report prints the results as text.
func (b *bench) report(w io.Writer) {
	fmt.Fprintf(w, "# streambench %s\n\n", time.Now().UTC().Format(time.RFC3339))
	for _, s := range b.settings() {
		fmt.Fprintln(w, s)
	}
	if len(b.throughputs) > 0 {
		fmt.Fprintln(w)
		b.throughputTable().text(w)
		fmt.Fprintln(w)
		for _, l := range b.ratios() {
			fmt.Fprintln(w, l)
		}
	}
	if len(b.nexmarks) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, b.nexmarkSettings())
		b.nexmarkTable().text(w)
		fmt.Fprintln(w)
		for _, l := range b.eosCosts() {
			fmt.Fprintln(w, l)
		}
	}
	if len(b.kstreams) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, kstreamsSettings)
		b.kstreamsTable().text(w)
		fmt.Fprintln(w)
		for _, l := range b.kstreamsChecks() {
			fmt.Fprintln(w, l)
		}
	}
	if len(b.latencies) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, b.latencySettings())
		b.latencyTable().text(w)
	}
	if b.build != nil {
		fmt.Fprintf(w, "\nstate: %d keys built by an exactly-once word count over %d lines in a child process in %v\n",
			b.build.keys, b.build.lines, b.build.took.Round(time.Millisecond))
	}
	for _, r := range b.restarts {
		fmt.Fprintf(w, "\nrestart after SIGKILL, same state directory, %s:\n", r.variant)
		restartTable(r).text(w)
		fmt.Fprintln(w, restartVerdict(r))
		if r.profile != "" {
			fmt.Fprintf(w, "CPU profile of the restarted process: %s\n", r.profile)
		}
	}
	if b.restore != nil {
		fmt.Fprintln(w, "\nrestore: a fresh instance (empty state directory, same broker) restores the whole changelog:")
		restoreTable(b.restore).text(w)
		if b.restore.fromStart {
			fmt.Fprintln(w, "(no assignment log line: restore time counted from Start's return)")
		}
	}
	if b.bulk != nil {
		fmt.Fprintf(w, "\nrestore-bulk: a fresh instance restores a changelog written directly (values of %d bytes, a tenth overwrites, a twentieth tombstones):\n", b.restoreValue)
		restoreTable(b.bulk).text(w)
	}
}

// writeMarkdown writes the results as Markdown tables to path.
func (b *bench) writeMarkdown(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "streambench, %s\n\n", time.Now().UTC().Format(time.RFC3339))
	for _, s := range b.settings() {
		fmt.Fprintf(w, "- %s\n", s)
	}
	if len(b.throughputs) > 0 {
		fmt.Fprintln(w)
		b.throughputTable().markdown(w)
		fmt.Fprintln(w)
		for _, l := range b.ratios() {
			fmt.Fprintf(w, "- %s\n", l)
		}
	}
	if len(b.nexmarks) > 0 {
		fmt.Fprintf(w, "\n%s\n\n", b.nexmarkSettings())
		b.nexmarkTable().markdown(w)
		fmt.Fprintln(w)
		for _, l := range b.eosCosts() {
			fmt.Fprintf(w, "- %s\n", l)
		}
	}
	if len(b.kstreams) > 0 {
		fmt.Fprintf(w, "\n%s\n\n", kstreamsSettings)
		b.kstreamsTable().markdown(w)
		fmt.Fprintln(w)
		for _, l := range b.kstreamsChecks() {
			fmt.Fprintf(w, "- %s\n", l)
		}
	}
	if len(b.latencies) > 0 {
		fmt.Fprintf(w, "\n%s\n\n", b.latencySettings())
		b.latencyTable().markdown(w)
	}
	if b.build != nil {
		fmt.Fprintf(w, "\nState: %d keys built by an exactly-once word count over %d lines in a child process in %v.\n",
			b.build.keys, b.build.lines, b.build.took.Round(time.Millisecond))
	}
	for _, r := range b.restarts {
		fmt.Fprintf(w, "\nRestart after SIGKILL (same state directory), %s:\n\n", r.variant)
		restartTable(r).markdown(w)
		fmt.Fprintf(w, "\n%s\n", restartVerdict(r))
	}
	if b.restore != nil {
		fmt.Fprintln(w, "\nRestore by a fresh instance (empty state directory, same broker):")
		fmt.Fprintln(w)
		restoreTable(b.restore).markdown(w)
	}
	if b.bulk != nil {
		fmt.Fprintf(w, "\nRestore of a changelog written directly (values of %d bytes, a tenth overwrites, a twentieth tombstones):\n\n", b.restoreValue)
		restoreTable(b.bulk).markdown(w)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cpuModel reads the CPU's model name from /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}
