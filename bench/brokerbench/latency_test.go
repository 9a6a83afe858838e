package main

import (
	"os"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	l := newLatencies(100)
	for i := 100; i >= 1; i-- { // out of order on purpose
		l.add(time.Duration(i) * time.Millisecond)
	}
	l.add(time.Hour) // past capacity: counted, dropped
	got := l.summarize()
	want := summary{count: 100, p50: 50 * time.Millisecond, p99: 99 * time.Millisecond, max: 100 * time.Millisecond}
	if got != want {
		t.Fatalf("summarize = %+v, want %+v", got, want)
	}
	if (&latencies{}).summarize() != (summary{}) {
		t.Fatal("empty summary not zero")
	}
}

func TestProcCPU(t *testing.T) {
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) { // burn CPU until a tick is charged
		if after, _ := procCPU(os.Getpid()); after > before {
			return
		}
	}
	t.Fatal("CPU time did not advance in 5s of spinning")
}
