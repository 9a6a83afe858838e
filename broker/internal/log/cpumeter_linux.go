package log

import (
	"time"

	"golang.org/x/sys/unix"
)

// cpuMeter measures the CPU time the process's other threads use: what
// the process used less what the calling thread did, so the caller must
// be locked to its thread (runtime.LockOSThread) for as long as it uses
// the meter.
type cpuMeter struct {
	process, thread time.Duration
}

// others returns the CPU time the other threads used since the last call
// (since the process started, the first time), and whether it could be
// measured.
func (m *cpuMeter) others() (time.Duration, bool) {
	var p, t unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &p) != nil || unix.Getrusage(unix.RUSAGE_THREAD, &t) != nil {
		return 0, false
	}
	process, thread := rusageTime(&p), rusageTime(&t)
	d := (process - m.process) - (thread - m.thread)
	m.process, m.thread = process, thread
	return max(d, 0), true
}

func rusageTime(r *unix.Rusage) time.Duration {
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}
