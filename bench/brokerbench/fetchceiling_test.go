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
