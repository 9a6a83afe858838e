//go:build !linux

package log

import "time"

// cpuMeter would measure the CPU time of the process's other threads;
// where a thread's own time is not to be had it measures nothing, and
// the prefaulter goes by the appends alone.
type cpuMeter struct{}

func (m *cpuMeter) others() (time.Duration, bool) { return 0, false }
