package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// clientsFigures are the numbers of one many-clients table row, each the
// median over the rounds.
type clientsFigures struct {
	inRate, inMB, outRate, outMB, aggregate float64
	prodRate, consRate                      float64 // the producers alone; the groups alone
	pacedRate, lag, p50, p99, max           float64 // records/s; ms
	pacedBroker, pacedClients               float64 // cores busy during the paced phase
	cpuIn, cpuOut, cpuMoved, other          float64
	clientIn, clientOut, clientMoved        float64 // the benchmark process's CPU s/GB
}

// clientsFigures returns broker's median figures on the many-clients
// workload wl, or nil if it was not measured.
func (r *run) clientsFigures(broker, wl string) *clientsFigures {
	rounds := r.roundsOf(broker, wl)
	if len(rounds) == 0 || rounds[0].clients == nil {
		return nil
	}
	med := func(get func(*clientsResult) float64) float64 {
		return median(rounds, func(wr *workloadResult) float64 { return get(wr.clients) })
	}
	return &clientsFigures{
		inRate:       med(func(c *clientsResult) float64 { return c.in.recordsPerSec() }),
		inMB:         med(func(c *clientsResult) float64 { return c.in.mbPerSec() }),
		outRate:      med(func(c *clientsResult) float64 { return c.out.recordsPerSec() }),
		outMB:        med(func(c *clientsResult) float64 { return c.out.mbPerSec() }),
		aggregate:    med((*clientsResult).aggregate),
		prodRate:     med(func(c *clientsResult) float64 { return c.produce.recordsPerSec() }),
		consRate:     med(func(c *clientsResult) float64 { return c.consume.recordsPerSec() }),
		pacedRate:    med(func(c *clientsResult) float64 { return c.paced.rate }),
		lag:          med(func(c *clientsResult) float64 { return msf(c.paced.lag) }),
		p50:          med(func(c *clientsResult) float64 { return msf(c.paced.lat.p50) }),
		p99:          med(func(c *clientsResult) float64 { return msf(c.paced.lat.p99) }),
		max:          med(func(c *clientsResult) float64 { return msf(c.paced.lat.max) }),
		pacedBroker:  med(func(c *clientsResult) float64 { return c.paced.brokerCores() }),
		pacedClients: med(func(c *clientsResult) float64 { return c.paced.clientCores() }),
		cpuIn:        med(func(c *clientsResult) float64 { return c.produce.cpuPerGB() }),
		cpuOut:       med(func(c *clientsResult) float64 { return c.consume.cpuPerGB() }),
		cpuMoved:     med((*clientsResult).cpuPerGBMoved),
		clientIn:     med(func(c *clientsResult) float64 { return c.produce.clientPerGB() }),
		clientOut:    med(func(c *clientsResult) float64 { return c.consume.clientPerGB() }),
		clientMoved:  med((*clientsResult).clientPerGBMoved),
		other: med(func(c *clientsResult) float64 {
			return max(c.produce.other, c.consume.other, c.out.other, c.paced.other)
		}),
	}
}

// roundsOf returns broker's results on workload wl, one per round.
func (r *run) roundsOf(broker, wl string) []*workloadResult {
	for _, b := range r.results {
		if b.name == broker {
			return b.byWorkload[wl]
		}
	}
	return nil
}

// workloadsOf returns the run's workloads of kind k.
func (r *run) workloadsOf(k workloadKind) []workload {
	var out []workload
	for _, wl := range r.workloads {
		if wl.kind == k {
			out = append(out, wl)
		}
	}
	return out
}

// check says whether a target is met.
func check(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

// reportClients prints the many-clients table, Runnel's ratios to each
// peer, and the targets for it.
func (r *run) reportClients(w io.Writer) {
	wls := r.workloadsOf(manyClients)
	if len(wls) == 0 {
		return
	}
	fmt.Fprintf(w, "\nmany clients: %d producers, %d groups x %d consumers, %d partitions\n", clientsProducers, clientsGroups, clientsPerGroup, clientsPartitions)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tbroker\tfan-out in rec/s\tMB/s\tout rec/s\tMB/s\taggregate rec/s\talone: produce rec/s\tconsume rec/s\tpaced rec/s\tlag ms\tp50 ms\tp99 ms\tmax ms\tCPU s/GB in\tCPU s/GB out\tCPU s/GB fan-out\tclients s/GB in\tclients s/GB out\tclients s/GB fan-out\tother load\t")
	for _, wl := range wls {
		for _, b := range r.results {
			f := r.clientsFigures(b.name, wl.name)
			switch {
			case f != nil:
				fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.1f\t%.0f\t%.1f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", wl.name, b.name,
					f.inRate, f.inMB, f.outRate, f.outMB, f.aggregate, f.prodRate, f.consRate, f.pacedRate, f.lag, f.p50, f.p99, f.max, f.pacedBroker, f.pacedClients,
					f.cpuIn, f.cpuOut, f.cpuMoved, f.clientIn, f.clientOut, f.clientMoved, f.other)
			case b.skipped != "":
				fmt.Fprintf(tw, "%s\t%s\tskipped\t\n", wl.name, b.name)
			case b.err == nil:
				fmt.Fprintf(tw, "%s\t%s\tnot run\t\n", wl.name, b.name) // ceiling: stores nothing to read
			default:
				fmt.Fprintf(tw, "%s\t%s\tfailed\t\n", wl.name, b.name)
			}
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "fan-out: the producers at full speed while both groups read along; out counts each group's copy; aggregate = in + out")
	fmt.Fprintln(w, "alone: the producers with the consumers paused (CPU s/GB in), then both groups reading that from the start with no producer (CPU s/GB out)")
	fmt.Fprintln(w, "CPU s/GB: the broker's; clients s/GB: this benchmark process's (the 4 producers and 4 consumers), per GB of the same phase")
	fmt.Fprintln(w, "paced cores: the CPU the broker and this benchmark's clients used during the paced phase, per second: near the machine's cores, every wait grows")

	fmt.Fprintln(w, "\nratios, many clients (throughput: higher is better for Runnel; p99 and CPU/GB: lower is better)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tratio\taggregate\tin\tout\tp99\tCPU/GB in\tCPU/GB out\tCPU/GB fan-out\t")
	for _, wl := range wls {
		rn := r.clientsFigures("runnel", wl.name)
		for _, peer := range []string{"kfake", "kafka"} {
			pr := r.clientsFigures(peer, wl.name)
			if rn == nil || pr == nil {
				continue
			}
			fmt.Fprintf(tw, "%s\trunnel/%s\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t\n", wl.name, peer,
				rn.aggregate/pr.aggregate, rn.inRate/pr.inRate, rn.outRate/pr.outRate, rn.p99/pr.p99, rn.cpuIn/pr.cpuIn, rn.cpuOut/pr.cpuOut, rn.cpuMoved/pr.cpuMoved)
		}
	}
	tw.Flush()

	fmt.Fprintln(w, "\ntargets (many clients)")
	for _, wl := range wls {
		rn := r.clientsFigures("runnel", wl.name)
		if rn == nil {
			fmt.Fprintf(w, "  %s: not checked (Runnel not measured)\n", wl.name)
			continue
		}
		if ka := r.clientsFigures("kafka", wl.name); ka != nil {
			x := rn.aggregate / ka.aggregate
			fmt.Fprintf(w, "  %s aggregate throughput >= 1.3x Apache Kafka: %.2fx  %s\n", wl.name, x, check(x >= 1.3))
		} else {
			fmt.Fprintf(w, "  %s aggregate throughput >= 1.3x Apache Kafka: not checked (Kafka not measured)\n", wl.name)
		}
		fmt.Fprintf(w, "  %s produce p99 < 10 ms at %.0f rec/s: %.2fms  %s\n", wl.name, rn.pacedRate, rn.p99, check(rn.p99 < 10))
	}
	r.reportClientsCeiling(w, wls)
}

// reportClientsCeiling sets the fan-out aggregates against the
// many-clients ceiling (fetchceiling: produces kept in memory, fetches
// written from it, groups in memory), the most these clients move on this
// machine whatever the broker: issue 17 asks Runnel for 1.3x Apache
// Kafka's aggregate.
func (r *run) reportClientsCeiling(w io.Writer, wls []workload) {
	for _, wl := range wls {
		c := r.clientsFigures("fetchceiling", wl.name)
		if c == nil || c.aggregate == 0 {
			continue
		}
		fmt.Fprintf(w, "  %s fan-out ceiling (fetchceiling): %.0f rec/s aggregate, broker CPU %.2f s/GB, clients %.2f s/GB", wl.name, c.aggregate, c.cpuMoved, c.clientMoved)
		if rn := r.clientsFigures("runnel", wl.name); rn != nil {
			fmt.Fprintf(w, "; Runnel at %.2f of it", rn.aggregate/c.aggregate)
		}
		if ka := r.clientsFigures("kafka", wl.name); ka != nil {
			x := 1.3 * ka.aggregate / c.aggregate
			fmt.Fprintf(w, "; Kafka at %.2f; 1.3x Kafka is %.2f of it", ka.aggregate/c.aggregate, x)
			if x > 1 {
				fmt.Fprint(w, " (beyond the ceiling)")
			}
		}
		fmt.Fprintln(w)
	}
}

// connsFigures are the numbers of one connection-heavy table row, each the
// median over the rounds.
type connsFigures struct {
	producers, partitions         int
	pacedRate, lag, p50, p99, max float64
	rssIdle, rssPeak              float64 // MiB
	fdsPeak                       float64
	cpuIn, other                  float64
}

func (r *run) connsFigures(broker, wl string) *connsFigures {
	rounds := r.roundsOf(broker, wl)
	if len(rounds) == 0 || rounds[0].conns == nil {
		return nil
	}
	med := func(get func(*connsResult) float64) float64 {
		return median(rounds, func(wr *workloadResult) float64 { return get(wr.conns) })
	}
	return &connsFigures{
		producers:  rounds[0].conns.producers,
		partitions: rounds[0].conns.partitions,
		pacedRate:  med(func(c *connsResult) float64 { return c.paced.rate }),
		lag:        med(func(c *connsResult) float64 { return msf(c.paced.lag) }),
		p50:        med(func(c *connsResult) float64 { return msf(c.paced.lat.p50) }),
		p99:        med(func(c *connsResult) float64 { return msf(c.paced.lat.p99) }),
		max:        med(func(c *connsResult) float64 { return msf(c.paced.lat.max) }),
		rssIdle:    med(func(c *connsResult) float64 { return mib(c.rssIdle) }),
		rssPeak:    med(func(c *connsResult) float64 { return mib(c.rssPeak) }),
		fdsPeak:    med(func(c *connsResult) float64 { return float64(c.fdsPeak) }),
		cpuIn:      med(func(c *connsResult) float64 { return c.paced.cpu.Seconds() / (float64(c.paced.bytes) / 1e9) }),
		other:      med(func(c *connsResult) float64 { return c.paced.other }),
	}
}

// reportConns prints the connection-heavy table and Runnel's ratios.
func (r *run) reportConns(w io.Writer) {
	wls := r.workloadsOf(manyConns)
	if len(wls) == 0 {
		return
	}
	fmt.Fprintln(w, "\nmany connections: every producer its own client, paced")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tbroker\tproducers\tpartitions\tpaced rec/s\tlag ms\tp50 ms\tp99 ms\tmax ms\tRSS idle MiB\tRSS peak MiB\tfds peak\tCPU s/GB in\tother load\t")
	for _, wl := range wls {
		for _, b := range r.results {
			f := r.connsFigures(b.name, wl.name)
			switch {
			case f != nil:
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%.1f\t%.2f\t%.2f\t%.2f\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t\n", wl.name, b.name,
					f.producers, f.partitions, f.pacedRate, f.lag, f.p50, f.p99, f.max, f.rssIdle, f.rssPeak, f.fdsPeak, f.cpuIn, f.other)
			case b.skipped != "":
				fmt.Fprintf(tw, "%s\t%s\tskipped\t\n", wl.name, b.name)
			default:
				fmt.Fprintf(tw, "%s\t%s\tfailed\t\n", wl.name, b.name)
			}
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "RSS idle: the broker with the topic created, before any producer connects; peak: sampled every 100 ms while they produce. CPU s/GB in counts the warm-up too")

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tratio\tRSS peak\tp99\tCPU/GB in\t")
	for _, wl := range wls {
		rn := r.connsFigures("runnel", wl.name)
		for _, peer := range []string{"kfake", "kafka"} {
			pr := r.connsFigures(peer, wl.name)
			if rn == nil || pr == nil {
				continue
			}
			fmt.Fprintf(tw, "%s\trunnel/%s\t%.2fx\t%.2fx\t%.2fx\t\n", wl.name, peer, rn.rssPeak/pr.rssPeak, rn.p99/pr.p99, rn.cpuIn/pr.cpuIn)
		}
	}
	tw.Flush()
}
