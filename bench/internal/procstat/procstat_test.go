package procstat

import (
	"os"
	"testing"
	"time"
)

// This process's CPU time is positive once it has spun, and never falls.
func TestCPUOfThisProcess(t *testing.T) {
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
	}
	after, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= 0 || after < before {
		t.Fatalf("CPU %v then %v", before, after)
	}
	if _, _, err := Times(-1); err == nil {
		t.Fatal("Times(-1) read a process")
	}
}
