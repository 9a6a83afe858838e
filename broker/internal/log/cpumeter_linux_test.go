package log

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// burn spins on the calling goroutine's thread until that thread has
// used d of CPU.
func burn(t *testing.T, d time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var r unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &r); err != nil {
		t.Error(err)
		return
	}
	end := rusageTime(&r) + d
	for x := 0; ; x++ {
		if x%1024 == 0 {
			if err := unix.Getrusage(unix.RUSAGE_THREAD, &r); err != nil {
				t.Error(err)
				return
			}
			if rusageTime(&r) >= end {
				return
			}
		}
	}
}

// TestCPUMeter: the meter counts what other threads of the process use,
// and not what its own thread does.
func TestCPUMeter(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var m cpuMeter
	if _, ok := m.others(); !ok {
		t.Fatal("no CPU time on Linux")
	}
	const d = 100 * time.Millisecond
	done := make(chan struct{})
	go func() {
		defer close(done)
		burn(t, d)
	}()
	<-done
	if got, _ := m.others(); got < d {
		t.Fatalf("another thread burned %v, the meter saw %v", d, got)
	}
	burn(t, d) // this thread, locked above
	if got, _ := m.others(); got >= d/2 {
		t.Fatalf("this thread burned %v, the meter counted %v of others", d, got)
	}
}
