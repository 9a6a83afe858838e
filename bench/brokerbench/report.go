package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report prints the machine, the settings, one table row per broker and
// workload, the ratios Runnel/kfake and Runnel/Kafka, and the targets.
func (r *run) report(w io.Writer) {
	fmt.Fprintf(w, "# brokerbench %s\n\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %d cores (%s), %s RAM, Linux %s, %s %s/%s\n",
		runtime.NumCPU(), cpuModel(), memTotal(), osRelease(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "client:  franz-go kgo producers, acks=all, idempotent (default), linger %v, no compression, default batching; the single-client workloads: one producer, one consumer, %d partitions\n",
		r.s.linger, partitions)
	if r.s.replicas > 1 {
		fmt.Fprintf(w, "replicated: every peer a cluster of %d broker processes (Kafka: KRaft, each node broker and controller; Runnel: each broker a controller-quorum voter); topics with replication factor %d, min.insync.replicas=%d; CPU summed over the %d processes\n",
			r.s.replicas, r.s.replicas, r.s.minISR, r.s.replicas)
	}
	for _, wl := range r.workloads {
		switch {
		case wl.kind == manyClients:
			fmt.Fprintf(w, "workload %s: %d-byte values, %d producers and %d groups of %d consumers (each its own client) on %d partitions; %d records produced alone, read by both groups, then %d more produced while both groups read along\n",
				wl.name, wl.size, clientsProducers, clientsGroups, clientsPerGroup, clientsPartitions, wl.records, wl.records)
		case wl.kind == manyConns:
			nprod, nparts := connsShape(r.quick)
			fmt.Fprintf(w, "workload %s: %d-byte values, %d producers (each its own client) at %d records/s each on %d partitions, for %v after %v warm-up\n",
				wl.name, wl.size, nprod, connsRatePerProd, nparts, r.s.paced, r.s.warmup)
		case r.s.duration > 0:
			fmt.Fprintf(w, "workload %s: %d-byte values, produce for %v, consume all from the start\n", wl.name, wl.size, r.s.duration)
		default:
			fmt.Fprintf(w, "workload %s: %d-byte values, produce %d records, consume all from the start\n", wl.name, wl.size, wl.records)
		}
	}
	if r.rate > 0 {
		fmt.Fprintf(w, "latency: paced producer at %.0f records/s (-rate) for %v after %v warm-up\n", r.rate, r.s.paced, r.s.warmup)
	} else {
		for _, wl := range r.workloads {
			if pk, ok := r.peak[wl.name]; ok && wl.kind == manyClients {
				fmt.Fprintf(w, "latency %s: %d paced producers at %.0f records/s in all = half of %s's fan-out rate in, for %v after %v warm-up\n",
					wl.name, clientsProducers, pk.recordsPerSec/2, pk.broker, r.s.paced, r.s.warmup)
			} else if ok {
				fmt.Fprintf(w, "latency %s: paced producer at %.0f records/s = half of %s's peak, for %v after %v warm-up\n",
					wl.name, pk.recordsPerSec/2, pk.broker, r.s.paced, r.s.warmup)
			}
		}
	}
	fmt.Fprintln(w, "durability as configured:")
	for _, b := range r.results {
		fmt.Fprintf(w, "  %-7s %s\n", b.name, b.durability)
	}
	if r.rounds > 1 {
		fmt.Fprintf(w, "every figure is the median of %d rounds; the brokers ran in turn in each round\n", r.rounds)
	}
	fmt.Fprintln(w)

	r.reportSingle(w)
	for _, b := range r.results {
		if b.skipped != "" {
			fmt.Fprintf(w, "%s skipped: %s\n", b.name, b.skipped)
		}
		if b.err != nil {
			fmt.Fprintf(w, "%s failed: %v\n", b.name, b.err)
		}
	}
	r.reportPerProcess(w)
	r.reportCPUSplit(w)
	r.reportRatios(w)
	r.reportSecurity(w)
	if r.s.replicas > 1 {
		r.reportReplicatedTargets(w)
	} else if slices.ContainsFunc(r.single(), func(wl workload) bool { return wl.name == "100B" }) {
		r.reportTargets(w)
	}
	if r.s.replicas <= 1 {
		r.reportConsumeCeiling(w)
	}
	r.reportClients(w)
	r.reportConns(w)
}

// single returns the single-client workloads of the run.
func (r *run) single() []workload {
	return slices.DeleteFunc(slices.Clone(r.workloads), func(wl workload) bool { return wl.kind != singleClient })
}

// reportSingle prints the table of the single-client workloads, if any.
func (r *run) reportSingle(w io.Writer) {
	if len(r.single()) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "workload\tbroker\tproduce rec/s\tMB/s\tconsume rec/s\tMB/s\tpaced rec/s\tlag ms\tp50 ms\tp99 ms\tmax ms\tCPU s/GB in\tCPU s/GB out\tclients s/GB in\tclients s/GB out\tother load\t")
	if r.rounds > 1 {
		fmt.Fprint(tw, "produce rec/s by round\t")
	}
	fmt.Fprintln(tw)
	for _, wl := range r.single() {
		for _, b := range r.results {
			f := r.figures(b.name, wl.name)
			switch {
			case f != nil:
				cons, consMB, consCPU, consClient := "-", "-", "-", "-"
				if f.consumed {
					cons = fmt.Sprintf("%.0f", f.consRate)
					consMB = fmt.Sprintf("%.1f", f.consMB)
					consCPU = fmt.Sprintf("%.2f", f.cpuOut)
					consClient = fmt.Sprintf("%.2f", f.clientOut)
				}
				fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.1f\t%s\t%s\t%.0f\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%.2f\t%s\t%.2f\t", wl.name, b.name,
					f.prodRate, f.prodMB, cons, consMB, f.pacedRate, f.lag, f.p50, f.p99, f.max, f.cpuIn, consCPU, f.clientIn, consClient, f.other)
				if r.rounds > 1 {
					var each []string
					for _, wr := range b.byWorkload[wl.name] {
						each = append(each, count(int64(wr.produce.recordsPerSec())))
					}
					fmt.Fprintf(tw, "%s\t", strings.Join(each, " "))
				}
				fmt.Fprintln(tw)
			case b.skipped != "":
				fmt.Fprintf(tw, "%s\t%s\tskipped\t\n", wl.name, b.name)
			default:
				fmt.Fprintf(tw, "%s\t%s\tfailed\t\n", wl.name, b.name)
			}
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "lag: how far the paced producer fell behind its schedule at worst (the broker could not keep up when it is large)")
	fmt.Fprintln(w, "clients s/GB: this benchmark process's CPU per GB in the same phase (the producer's or the consumer's side, on the same cores)")
	fmt.Fprintln(w, "other load: cores kept busy by processes other than the broker and this benchmark (worst phase); above ~0.1 the row is skewed")
}

// reportPerProcess prints, for clusters, each broker process's CPU s/GB
// in and out (medians over the rounds): where the summed figure goes.
func (r *run) reportPerProcess(w io.Writer) {
	if r.s.replicas <= 1 || len(r.single()) == 0 {
		return
	}
	fmt.Fprintln(w, "\nCPU s/GB by broker process (node 1, 2, ...; in | out)")
	for _, wl := range r.single() {
		for _, b := range r.results {
			rounds := b.byWorkload[wl.name]
			if len(rounds) == 0 {
				continue
			}
			var in, out []string
			for i := range rounds[0].produce.cpuPer {
				in = append(in, fmt.Sprintf("%.2f", median(rounds, func(wr *workloadResult) float64 { return wr.produce.cpuPerGBOf(i) })))
				if i < len(rounds[0].consume.cpuPer) {
					out = append(out, fmt.Sprintf("%.2f", median(rounds, func(wr *workloadResult) float64 { return wr.consume.cpuPerGBOf(i) })))
				}
			}
			fmt.Fprintf(w, "  %6s %7s  %s | %s\n", wl.name, b.name, strings.Join(in, " "), strings.Join(out, " "))
		}
	}
}

// reportReplicatedTargets checks issue 14's targets on both record
// sizes: at least Apache Kafka's throughput, at most half its CPU per GB.
func (r *run) reportReplicatedTargets(w io.Writer) {
	fmt.Fprintf(w, "\ntargets (replicated, RF %d, acks=all, min.insync.replicas=%d)\n", r.s.replicas, r.s.minISR)
	for _, wl := range r.single() {
		rn, ka := r.figures("runnel", wl.name), r.figures("kafka", wl.name)
		if rn == nil || ka == nil {
			fmt.Fprintf(w, "  %s: not checked (needs runnel and kafka measured)\n", wl.name)
			continue
		}
		x := rn.prodRate / ka.prodRate
		fmt.Fprintf(w, "  %s produce >= Apache Kafka: %.2fx  %s\n", wl.name, x, check(x >= 1))
		x = rn.consRate / ka.consRate
		fmt.Fprintf(w, "  %s consume >= Apache Kafka: %.2fx  %s\n", wl.name, x, check(x >= 1))
		x = rn.cpuIn / ka.cpuIn
		fmt.Fprintf(w, "  %s CPU/GB in <= 0.5x Apache Kafka: %.2fx  %s\n", wl.name, x, check(x <= 0.5))
		x = rn.cpuOut / ka.cpuOut
		fmt.Fprintf(w, "  %s CPU/GB out <= 0.5x Apache Kafka: %.2fx  %s\n", wl.name, x, check(x <= 0.5))
	}
}

// figures are the numbers of one table row: one broker and workload, each
// the median over the rounds.
type figures struct {
	prodRate, prodMB     float64
	consumed             bool
	consRate, consMB     float64
	pacedRate, lag       float64 // records/s; ms
	p50, p99, max        float64 // ms
	cpuIn, cpuOut, other float64
	clientIn, clientOut  float64 // the benchmark process's CPU s/GB
}

// figures returns the median figures of broker on workload, or nil if it
// was not measured.
func (r *run) figures(broker, workload string) *figures {
	var rounds []*workloadResult
	for _, b := range r.results {
		if b.name == broker {
			rounds = b.byWorkload[workload]
		}
	}
	if len(rounds) == 0 {
		return nil
	}
	med := func(get func(*workloadResult) float64) float64 { return median(rounds, get) }
	return &figures{
		prodRate:  med(func(wr *workloadResult) float64 { return wr.produce.recordsPerSec() }),
		prodMB:    med(func(wr *workloadResult) float64 { return wr.produce.mbPerSec() }),
		consumed:  rounds[0].consume.records > 0,
		consRate:  med(func(wr *workloadResult) float64 { return wr.consume.recordsPerSec() }),
		consMB:    med(func(wr *workloadResult) float64 { return wr.consume.mbPerSec() }),
		pacedRate: med(func(wr *workloadResult) float64 { return wr.paced.rate }),
		lag:       med(func(wr *workloadResult) float64 { return msf(wr.paced.lag) }),
		p50:       med(func(wr *workloadResult) float64 { return msf(wr.paced.lat.p50) }),
		p99:       med(func(wr *workloadResult) float64 { return msf(wr.paced.lat.p99) }),
		max:       med(func(wr *workloadResult) float64 { return msf(wr.paced.lat.max) }),
		cpuIn:     med(func(wr *workloadResult) float64 { return wr.produce.cpuPerGB() }),
		cpuOut:    med(func(wr *workloadResult) float64 { return wr.consume.cpuPerGB() }),
		clientIn:  med(func(wr *workloadResult) float64 { return wr.produce.clientPerGB() }),
		clientOut: med(func(wr *workloadResult) float64 { return wr.consume.clientPerGB() }),
		other:     med(func(wr *workloadResult) float64 { return max(wr.produce.other, wr.consume.other, wr.paced.other) }),
	}
}

// reportRatios prints Runnel's figures divided by each peer's. Above 1 is
// better for Runnel in throughput; below 1 is better in latency and CPU.
func (r *run) reportRatios(w io.Writer) {
	if len(r.single()) == 0 {
		return
	}
	fmt.Fprintln(w, "\nratios (throughput: higher is better for Runnel; p99 and CPU/GB: lower is better for Runnel)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tratio\tproduce\tconsume\tp99\tCPU/GB in\tCPU/GB out\t")
	printed := false
	for _, wl := range r.single() {
		rn := r.figures("runnel", wl.name)
		for _, peer := range []string{"kfake", "kafka"} {
			pr := r.figures(peer, wl.name)
			if rn == nil || pr == nil {
				continue
			}
			printed = true
			fmt.Fprintf(tw, "%s\trunnel/%s\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t\n", wl.name, peer,
				rn.prodRate/pr.prodRate, rn.consRate/pr.consRate, rn.p99/pr.p99, rn.cpuIn/pr.cpuIn, rn.cpuOut/pr.cpuOut)
		}
	}
	tw.Flush()
	if !printed {
		fmt.Fprintln(w, "  (none: needs runnel and at least one peer measured)")
	}
}

// reportSecurity prints, for Runnel and Kafka measured over TLS or
// SASL_SSL as well as plaintext, their secured throughput as a fraction
// of their plaintext throughput and their CPU per GB as a multiple of it,
// then checks issue 16's target: TLS costs Runnel at most 25% of its
// plaintext throughput, and less than it costs Kafka.
func (r *run) reportSecurity(w io.Writer) {
	secured := false
	for _, b := range r.results {
		secured = secured || strings.Contains(b.name, "/")
	}
	if !secured {
		return
	}
	fmt.Fprintln(w, "\nsecurity: each broker over TLS and SASL_SSL as a fraction of itself over plaintext (throughput: 1 is free; CPU/GB: 1 is free)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tbroker\tproduce\tconsume\tCPU/GB in\tCPU/GB out\t")
	for _, wl := range r.workloads {
		for _, broker := range []string{"runnel", "kafka"} {
			plain := r.figures(broker, wl.name)
			for _, m := range []secMode{tlsMode, saslSSL} {
				sec := r.figures(broker+"/"+string(m), wl.name)
				if plain == nil || sec == nil {
					continue
				}
				fmt.Fprintf(tw, "%s\t%s/%s\t%.2f\t%.2f\t%.2fx\t%.2fx\t\n", wl.name, broker, m,
					sec.prodRate/plain.prodRate, sec.consRate/plain.consRate, sec.cpuIn/plain.cpuIn, sec.cpuOut/plain.cpuOut)
			}
		}
	}
	tw.Flush()

	fmt.Fprintln(w, "\ntargets (security): TLS costs Runnel at most 25% of its plaintext throughput, and less than it costs Kafka")
	check := func(ok bool) string {
		if ok {
			return "MET"
		}
		return "NOT MET"
	}
	for _, wl := range r.workloads {
		for _, m := range []secMode{tlsMode, saslSSL} {
			rp, rs := r.figures("runnel", wl.name), r.figures("runnel/"+string(m), wl.name)
			if rp == nil || rs == nil {
				continue
			}
			kp, ks := r.figures("kafka", wl.name), r.figures("kafka/"+string(m), wl.name)
			for _, phase := range []struct {
				name   string
				figure func(*figures) float64
			}{
				{"produce", func(f *figures) float64 { return f.prodRate }},
				{"consume", func(f *figures) float64 { return f.consRate }},
			} {
				cost := 1 - phase.figure(rs)/phase.figure(rp)
				fmt.Fprintf(w, "  %s %s over %s: Runnel loses %.0f%%  %s", wl.name, phase.name, m, 100*cost, check(cost <= 0.25))
				if kp != nil && ks != nil {
					kcost := 1 - phase.figure(ks)/phase.figure(kp)
					fmt.Fprintf(w, "; Kafka loses %.0f%%  %s", 100*kcost, check(cost < kcost))
				} else {
					fmt.Fprint(w, "; against Kafka: not checked (Kafka not measured over both)")
				}
				fmt.Fprintln(w)
			}
		}
	}
}

// reportTargets checks the targets on the 100-byte workload.
func (r *run) reportTargets(w io.Writer) {
	fmt.Fprintln(w, "\ntargets (100-byte records)")
	rn := r.figures("runnel", "100B")
	if rn == nil {
		fmt.Fprintln(w, "  not checked: Runnel was not measured")
		return
	}
	if kf := r.figures("kfake", "100B"); kf != nil {
		x := rn.prodRate / kf.prodRate
		fmt.Fprintf(w, "  durable produce >= 1.5x kfake (fsync per batch): %.2fx  %s\n", x, check(x >= 1.5))
	} else {
		fmt.Fprintln(w, "  durable produce >= 1.5x kfake: not checked (kfake not measured)")
	}
	if ka := r.figures("kafka", "100B"); ka != nil {
		x := rn.prodRate / ka.prodRate
		fmt.Fprintf(w, "  durable produce >= Apache Kafka (default flush, no fsync): %.2fx  %s\n", x, check(x >= 1))
	} else {
		fmt.Fprintln(w, "  durable produce >= Apache Kafka: not checked (Kafka not measured)")
	}
	fmt.Fprintf(w, "  produce p99 < 5 ms at half peak (%.0f rec/s): %.2fms  %s\n", rn.pacedRate, rn.p99, check(rn.p99 < 5))
	if c := r.figures("ceiling", "100B"); c != nil {
		fmt.Fprintf(w, "    (for scale: the client alone, against kfake discarding every record, at %.0f rec/s: p99 %.2fms)\n", c.pacedRate, c.p99)
		fmt.Fprintf(w, "    (one producer's own ceiling here: %.0f rec/s; 1.5x kfake would be %s)\n", c.prodRate, func() string {
			if kf := r.figures("kfake", "100B"); kf != nil {
				return fmt.Sprintf("%.0f rec/s", 1.5*kf.prodRate)
			}
			return "unknown"
		}())
	}
}

// median is the median of get over rounds.
func median(rounds []*workloadResult, get func(*workloadResult) float64) float64 {
	v := make([]float64, len(rounds))
	for i, wr := range rounds {
		v[i] = get(wr)
	}
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

func msf(d time.Duration) float64 { return float64(d) / 1e6 }

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "?"
}

func osRelease() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

// reportConsumeCeiling sets the single consumer's rates against the
// consume ceiling (fetchceiling: fetches written from memory), the most
// that consumer reads on this machine whatever the broker: issue 17 asks
// Runnel for 1.3x Apache Kafka's consume at 1 KiB.
func (r *run) reportConsumeCeiling(w io.Writer) {
	for _, wl := range r.single() {
		c := r.figures("fetchceiling", wl.name)
		if c == nil || c.consRate == 0 {
			continue
		}
		fmt.Fprintf(w, "  %s consume ceiling (fetchceiling): %.0f rec/s, CPU %.2f s/GB out", wl.name, c.consRate, c.cpuOut)
		if rn := r.figures("runnel", wl.name); rn != nil {
			fmt.Fprintf(w, "; Runnel at %.2f of it", rn.consRate/c.consRate)
		}
		if ka := r.figures("kafka", wl.name); ka != nil {
			fmt.Fprintf(w, "; Kafka at %.2f; 1.3x Kafka is %.2f of it", ka.consRate/c.consRate, 1.3*ka.consRate/c.consRate)
		}
		fmt.Fprintln(w)
	}
}
