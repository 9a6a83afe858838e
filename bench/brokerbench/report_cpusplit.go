package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// reportCPUSplit prints where each broker's CPU per GB in went in the
// produce phase (medians over the rounds): user space, the kernel on the
// broker's behalf (system calls: the copy into the page cache, fdatasync's
// writeback), and the machine's kernel threads meanwhile, which write back
// the page cache of a broker that does not fsync itself and so are not in
// its own CPU time.
func (r *run) reportCPUSplit(w io.Writer) {
	if r.s.replicas > 1 {
		return
	}
	type row struct {
		wl, broker               string
		total, user, sys, kt, wb float64
	}
	var rows []row
	for _, wl := range r.workloads {
		if wl.kind != singleClient && wl.kind != manyClients {
			continue
		}
		for _, b := range r.results {
			rounds := b.byWorkload[wl.name]
			if len(rounds) == 0 {
				continue
			}
			in := func(wr *workloadResult) throughput {
				if wr.clients != nil {
					return wr.clients.produce
				}
				return wr.produce
			}
			rows = append(rows, row{
				wl: wl.name, broker: b.name,
				total: median(rounds, func(wr *workloadResult) float64 { return in(wr).cpuPerGB() }),
				user:  median(rounds, func(wr *workloadResult) float64 { return in(wr).cpuPerGB() - in(wr).sysPerGB() }),
				sys:   median(rounds, func(wr *workloadResult) float64 { return in(wr).sysPerGB() }),
				kt:    median(rounds, func(wr *workloadResult) float64 { return in(wr).kthreadsPerGB() }),
				wb:    median(rounds, func(wr *workloadResult) float64 { return in(wr).writebackPerGB() }),
			})
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\nCPU s/GB in, produce phase, split (medians of each column)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tbroker\tbroker total\tuser\tsystem\tkernel threads\twriteback after\tbroker + writeback after\t")
	for _, x := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", x.wl, x.broker, x.total, x.user, x.sys, x.kt, x.wb, x.total+x.wb)
	}
	tw.Flush()
	fmt.Fprintln(w, "kernel threads: every kernel thread of the machine (page cache writeback, ext4 journal, softirq) during the phase, whoever it worked for")
	fmt.Fprintln(w, "writeback after: the kernel threads' and sync(2)'s CPU writing back the machine's dirty pages right after the phase (what a broker that does not fsync leaves for later)")
}
