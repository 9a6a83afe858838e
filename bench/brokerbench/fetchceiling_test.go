package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestFetchCeilingQuick runs the quick 1 KiB single-client workload
// against the consume ceiling (bench/cmd/fetchceiling): the consumer must
// read back every record produced, byte for byte in count, and the report
// must set Runnel's consume against the ceiling's.
func TestFetchCeilingQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a broker process")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	p, proc := startFetchCeiling(ctx, t)
	r := quickRun(t)
	const records = 30_000
	w := workload{name: "1KiB", size: 1024, records: records}
	r.workloads = []workload{w}
	wr, err := r.runWorkload(ctx, p, proc, w)
	if err != nil {
		t.Fatal(err)
	}
	if wr.produce.records != records || wr.consume.records != records {
		t.Errorf("produced %d and consumed %d records, want %d each", wr.produce.records, wr.consume.records, records)
	}
	if wr.consume.bytes != records*1024 {
		t.Errorf("consumed %d bytes, want %d", wr.consume.bytes, records*1024)
	}
	if wr.paced.lat.count == 0 {
		t.Error("paced phase measured no latency")
	}
	// The same figures as Runnel's, to see the report's comparison.
	r.results = []*brokerResult{
		{name: "fetchceiling", byWorkload: map[string][]*workloadResult{w.name: {wr}}},
		{name: "runnel", byWorkload: map[string][]*workloadResult{w.name: {wr}}},
	}
	var out bytes.Buffer
	r.report(&out)
	t.Log(out.String())
	if !strings.Contains(out.String(), "1KiB consume ceiling (fetchceiling)") || !strings.Contains(out.String(), "Runnel at 1.00 of it") {
		t.Errorf("report does not set Runnel against the consume ceiling:\n%s", out.String())
	}
}

// TestFetchCeilingClientsQuick runs the quick many-clients workload
// against the ceiling, whose in-memory coordinator must spread the 24
// partitions over each group's two members: every phase sees every
// record (each group reads all of them), and the report sets Runnel's
// and Kafka's fan-out aggregates against the ceiling's.
func TestFetchCeilingClientsQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a broker process")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	p, proc := startFetchCeiling(ctx, t)
	r := quickRun(t)
	const records = 20_000
	w := workload{name: "clients1KiB", kind: manyClients, size: 1024, records: records}
	r.workloads = []workload{w}
	wr, err := r.runWorkload(ctx, p, proc, w)
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
	if c.consume.bytes != c.consume.records*1024 || c.out.bytes != c.out.records*1024 {
		t.Errorf("read %d and %d bytes for %d and %d records of 1 KiB", c.consume.bytes, c.out.bytes, c.consume.records, c.out.records)
	}
	if c.paced.lat.count == 0 {
		t.Error("paced phase measured no latency")
	}
	if c.clientCPU <= 0 || c.consume.client <= 0 {
		t.Errorf("clients' CPU not measured: fan-out %v, consume %v", c.clientCPU, c.consume.client)
	}
	// The same figures as Runnel's and Kafka's, to see the report's
	// comparison.
	res := map[string][]*workloadResult{w.name: {wr}}
	r.results = []*brokerResult{
		{name: "runnel", byWorkload: res},
		{name: "kafka", byWorkload: res},
		{name: "fetchceiling", byWorkload: res},
	}
	var out bytes.Buffer
	r.report(&out)
	t.Log(out.String())
	for _, want := range []string{"clients1KiB fan-out ceiling (fetchceiling)", "Runnel at 1.00 of it; Kafka at 1.00; 1.3x Kafka is 1.30 of it (beyond the ceiling)", "clients s/GB fan-out"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// startFetchCeiling builds and starts bench/cmd/fetchceiling for a test,
// stopped when it ends.
func startFetchCeiling(ctx context.Context, t *testing.T) (*fetchCeilingPeer, *cluster) {
	t.Helper()
	p := &fetchCeilingPeer{binDir: t.TempDir()}
	proc, err := p.start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := proc.stop(30 * time.Second); err != nil {
			t.Error(err)
		}
	})
	return p, proc
}
