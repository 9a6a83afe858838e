package main

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBrokerPrefaults: `runnel broker` takes its whole direct-writes cache
// at start by default, before any record arrives, and
// --direct-writes-cache-prefault=false leaves it to the appends.
func TestBrokerPrefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := buildCommand(t)
	const budget = 64 << 20
	cache := "--direct-writes-cache=" + strconv.Itoa(budget)

	bb := startBinaryBroker(t, bin, t.TempDir(), cache)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := cacheAllocated(t, bb.metrics)
		if got == budget {
			break
		}
		if got > budget || time.Now().After(deadline) {
			t.Fatalf("by default the broker's cache took %d bytes, want the budget, %d; stderr:\n%s", got, budget, bb.stderr.String())
		}
		// Not more often: a scrape takes the broker's CPU, and a
		// broker scraped all the time is not idle.
		time.Sleep(250 * time.Millisecond)
	}
	bb.stop(t, syscall.SIGTERM)

	bb = startBinaryBroker(t, bin, t.TempDir(), cache, "--direct-writes-cache-prefault=false")
	// Nothing is appended, so nothing is taken, however long one waits;
	// a second is far longer than prefaulting 64 MiB took above.
	time.Sleep(time.Second)
	if got := cacheAllocated(t, bb.metrics); got != 0 {
		t.Fatalf("without prefault the idle broker's cache took %d bytes", got)
	}
	bb.stop(t, syscall.SIGTERM)
}

// cacheAllocated reads runnel_broker_direct_writes_cache_bytes{state="allocated"}
// from the broker's metrics.
func cacheAllocated(t *testing.T, addr string) int64 {
	t.Helper()
	const name = `runnel_broker_direct_writes_cache_bytes{state="allocated"} `
	for line := range strings.Lines(checkMetrics(t, addr)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s%q: %v", name, v, err)
			}
			return int64(f)
		}
	}
	t.Fatalf("no %s in /metrics", strings.TrimSpace(name))
	return 0
}
