// Command schedlat reads a Go execution trace and reports how long
// goroutines waited to run once they could: the time from becoming
// runnable to running, grouped by what made them runnable (the frames of
// the goroutine that woke them, a system call they came back from, a
// preemption, or their creation), and how long goroutines spent in
// blocking system calls, grouped by the call's frames. Each group gets
// its count, total and quantiles.
//
// A produce's acknowledgement crosses several goroutines (the connection's
// reader, the partition's high-watermark loop, the commit ring, the
// connection's writer). On a machine whose cores are busy, each hand-off
// waits for a core; this shows how long, per hand-off, where a CPU profile
// shows only where the cores went.
//
//	RUNNEL_PPROF_LISTEN=127.0.0.1:6061 runnelbroker ... &
//	curl -o paced.trace 'http://127.0.0.1:6061/debug/pprof/trace?seconds=2'
//	go run ./cmd/schedlat paced.trace
//
// It is a measuring tool for issue 17's latency work, not a benchmark.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

func main() {
	frames := flag.Int("frames", 3, "frames of a stack that name a group")
	top := flag.Int("top", 25, "groups shown, by total time")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: schedlat [flags] TRACE")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "schedlat:", err)
		os.Exit(1)
	}
	defer f.Close()
	waits, syscalls, err := analyze(f, *frames)
	if err != nil {
		fmt.Fprintln(os.Stderr, "schedlat:", err)
		os.Exit(1)
	}
	fmt.Println("waits to run, by what made the goroutine runnable:")
	report(os.Stdout, waits, *top)
	fmt.Println("\nblocking system calls, by where they were made:")
	report(os.Stdout, syscalls, *top)
}

// groups maps a group's name to its samples.
type groups map[string][]time.Duration

// since is a goroutine's last transition that analyze times from.
type since struct {
	at    trace.Time
	group string
}

// analyze reads a trace and returns the waits to run and the blocking
// system calls, grouped.
func analyze(r io.Reader, frames int) (waits, syscalls groups, err error) {
	tr, err := trace.NewReader(r)
	if err != nil {
		return nil, nil, err
	}
	waits, syscalls = groups{}, groups{}
	runnable := map[trace.GoID]since{}
	inSyscall := map[trace.GoID]since{}
	for {
		ev, err := tr.ReadEvent()
		if err == io.EOF {
			return waits, syscalls, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		g := st.Resource.Goroutine()
		from, to := st.Goroutine()
		if from == trace.GoSyscall {
			if s, ok := inSyscall[g]; ok {
				syscalls[s.group] = append(syscalls[s.group], time.Duration(ev.Time()-s.at))
				delete(inSyscall, g)
			}
		}
		switch {
		case to == trace.GoSyscall:
			inSyscall[g] = since{ev.Time(), name(st.Stack, frames)}
		case to == trace.GoRunnable:
			runnable[g] = since{ev.Time(), cause(ev, st, from, frames)}
		case to == trace.GoRunning && from == trace.GoRunnable:
			if s, ok := runnable[g]; ok {
				waits[s.group] = append(waits[s.group], time.Duration(ev.Time()-s.at))
				delete(runnable, g)
			}
		}
	}
}

// cause names what made a goroutine runnable.
func cause(ev trace.Event, st trace.StateTransition, from trace.GoState, frames int) string {
	switch from {
	case trace.GoWaiting:
		// The event is the waker's: its stack is where the wake came from.
		if s := name(ev.Stack(), frames); s != "" {
			return "woken by " + s
		}
		return "woken by the runtime (network poller, timer)"
	case trace.GoSyscall:
		return "back from a system call in " + name(st.Stack, frames)
	case trace.GoRunning:
		return "preempted or yielded in " + name(st.Stack, frames)
	case trace.GoNotExist, trace.GoUndetermined:
		return "created, or runnable when the trace began"
	}
	return "from " + from.String()
}

// name is the innermost frames of a stack, package paths cut, callers
// after callees.
func name(s trace.Stack, frames int) string {
	var fs []string
	for f := range s.Frames() {
		fs = append(fs, f.Func[strings.LastIndex(f.Func, "/")+1:])
		if len(fs) == frames {
			break
		}
	}
	return strings.Join(fs, " < ")
}

// report prints the groups with the most total time first.
func report(w io.Writer, gs groups, top int) {
	type row struct {
		name  string
		d     []time.Duration
		total time.Duration
	}
	rows := make([]row, 0, len(gs))
	for n, d := range gs {
		slices.Sort(d)
		var t time.Duration
		for _, x := range d {
			t += x
		}
		rows = append(rows, row{n, d, t})
	}
	slices.SortFunc(rows, func(a, b row) int { return int(b.total - a.total) })
	fmt.Fprintf(w, "%9s %7s %9s %9s %9s %9s  %s\n", "total", "n", "p50", "p90", "p99", "max", "group")
	for i, r := range rows {
		if i == top {
			break
		}
		fmt.Fprintf(w, "%8.3fs %7d %9v %9v %9v %9v  %s\n", r.total.Seconds(), len(r.d),
			quantile(r.d, .5), quantile(r.d, .9), quantile(r.d, .99), r.d[len(r.d)-1].Round(time.Microsecond), r.name)
	}
}

// quantile is the q-quantile of sorted samples, to the microsecond.
func quantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[int(q*float64(len(sorted)-1))].Round(time.Microsecond)
}
