package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startRunnel builds bench/cmd/runnelbroker and starts it in its own
// process, stopped when the test ends.
func startRunnel(t *testing.T, ctx context.Context) *cluster {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "broker")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	proc, err := (&runnelPeer{binDir: dir, nodes: 1}).start(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := proc.stop(30 * time.Second); err != nil {
			t.Error(err)
		}
	})
	return proc
}

func quickRun(t *testing.T) *run {
	return &run{
		s:     settings{linger: time.Millisecond, paced: time.Second, warmup: 300 * time.Millisecond, replicas: 1},
		prog:  &progress{w: testWriter{t}, start: time.Now()},
		peak:  map[string]peakRate{},
		quick: true,
	}
}

// TestClientsQuick runs the quick many-clients workload against Runnel's
// broker over TCP: every phase must see every record (each group reads
// all of them) and measure a latency.
func TestClientsQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a broker process")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	proc := startRunnel(t, ctx)
	r := quickRun(t)
	const records = 20_000
	w := workload{name: "clients100B", kind: manyClients, size: 100, records: records}
	wr, err := r.runClients(ctx, &runnelPeer{}, proc, w)
	if err != nil {
		t.Fatal(err)
	}
	c := wr.clients
	if c.produce.records != records || c.in.records != records {
		t.Errorf("produced %d alone and %d in the fan-out, want %d each", c.produce.records, c.in.records, records)
	}
	// A rebalance may deliver a record twice, never fewer than all.
	if c.consume.records < clientsGroups*records || c.out.records < clientsGroups*records {
		t.Errorf("groups read %d alone and %d in the fan-out, want at least %d each", c.consume.records, c.out.records, clientsGroups*records)
	}
	if c.consume.bytes != c.consume.records*100 || c.out.bytes != c.out.records*100 {
		t.Errorf("read %d and %d bytes for %d and %d records of 100 B", c.consume.bytes, c.out.bytes, c.consume.records, c.out.records)
	}
	if c.paced.lat.count == 0 || c.paced.lat.p99 <= 0 {
		t.Errorf("paced phase measured no latency: %+v", c.paced.lat)
	}
	if pk := r.peak[w.name]; pk.recordsPerSec != c.in.recordsPerSec() || c.paced.rate != pk.recordsPerSec/2 {
		t.Errorf("paced at %.0f rec/s with peak %+v, want half of the fan-out rate in (%.0f)", c.paced.rate, pk, c.in.recordsPerSec())
	}
	r.results = []*brokerResult{{name: "runnel", byWorkload: map[string][]*workloadResult{w.name: {wr}}}}
	r.workloads = []workload{w}
	var out bytes.Buffer
	r.report(&out)
	t.Log(out.String())
	if !strings.Contains(out.String(), "clients100B  runnel") {
		t.Errorf("report has no clients100B row for runnel:\n%s", out.String())
	}
}

// TestConnsQuick runs the quick connection-heavy workload against Runnel's
// broker: every producer's records are acknowledged and the broker's
// memory is sampled.
func TestConnsQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a broker process")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	proc := startRunnel(t, ctx)
	r := quickRun(t)
	wr, err := r.runConns(ctx, proc, workload{name: "conns", kind: manyConns, size: 1024})
	if err != nil {
		t.Fatal(err)
	}
	c := wr.conns
	nprod, nparts := connsShape(true)
	if c.producers != nprod || c.partitions != nparts {
		t.Errorf("ran %d producers on %d partitions, want %d on %d", c.producers, c.partitions, nprod, nparts)
	}
	if c.rssIdle <= 0 || c.rssPeak < c.rssIdle {
		t.Errorf("RSS idle %d, peak %d: want both measured, peak at least idle", c.rssIdle, c.rssPeak)
	}
	if c.fdsPeak < nprod {
		t.Errorf("%d file descriptors at peak for %d producers' connections", c.fdsPeak, nprod)
	}
	if c.paced.lat.count == 0 {
		t.Error("paced phase measured no latency")
	}
}

// TestReportClients checks the many-clients ratios and targets from made-up
// figures: Runnel at 1.5x Kafka's aggregate and a p99 of 8 ms meets both.
func TestReportClients(t *testing.T) {
	res := func(in, out float64, p99 time.Duration) *workloadResult {
		c := &clientsResult{
			produce: throughput{records: 1000, bytes: 1e9, elapsed: time.Second, cpu: 2 * time.Second},
			consume: throughput{records: 2000, bytes: 2e9, elapsed: time.Second, cpu: time.Second},
			in:      throughput{records: int64(in), bytes: 1e9, elapsed: time.Second},
			out:     throughput{records: int64(out), bytes: 2e9, elapsed: time.Second},
			cpu:     3 * time.Second,
			paced:   pacedResult{rate: 500, lat: summary{count: 10, p99: p99}},
		}
		return &workloadResult{clients: c}
	}
	r := &run{
		workloads: []workload{{name: "clients100B", kind: manyClients, size: 100}},
		results: []*brokerResult{
			{name: "runnel", byWorkload: map[string][]*workloadResult{"clients100B": {res(1000, 2000, 8*time.Millisecond)}}},
			{name: "kafka", byWorkload: map[string][]*workloadResult{"clients100B": {res(600, 1400, 16*time.Millisecond)}}},
		},
		peak: map[string]peakRate{},
	}
	var out bytes.Buffer
	r.report(&out)
	for _, want := range []string{
		`clients100B +runnel/kafka +1\.50x +1\.67x +1\.43x +0\.50x`,
		`aggregate throughput >= 1\.3x Apache Kafka: 1\.50x  MET`,
		`produce p99 < 10 ms at 500 rec/s: 8\.00ms  MET`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
