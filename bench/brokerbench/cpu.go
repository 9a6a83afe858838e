package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runnel-dev/runnel/bench/internal/procstat"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procCPU returns the user+system CPU time of process pid.
func procCPU(pid int) (time.Duration, error) { return procstat.CPU(pid) }

// pfKthread is PF_KTHREAD in /proc/PID/stat's flags: a kernel thread.
const pfKthread = 0x00200000

// otherCPU returns the CPU time used so far by the machine's user-space
// processes other than skip: utime+stime plus the reaped children's
// cutime+cstime, so that short-lived processes (a test binary) count once
// their parent has waited for them. Kernel threads (writeback, softirq) are
// left out: they mostly work for the broker under test.
func otherCPU(skip ...int) (time.Duration, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || slices.Contains(skip, pid) {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // f[n-3] is field n
		if len(f) < 15 {
			continue
		}
		if flags, _ := strconv.ParseUint(f[9-3], 10, 64); flags&pfKthread != 0 {
			continue
		}
		for n := 14; n <= 17; n++ { // utime stime cutime cstime
			v, _ := strconv.ParseInt(f[n-3], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// kthreadTimes returns the CPU time used so far by each of the machine's
// kernel threads (flushers writing dirty pages back, the ext4 journal,
// softirq work), by pid: the disk work a broker that does not fsync
// leaves to the kernel, which its own CPU time does not show.
func kthreadTimes() (map[int]time.Duration, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	t := make(map[int]time.Duration)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			continue
		}
		if flags, _ := strconv.ParseUint(f[9-3], 10, 64); flags&pfKthread == 0 {
			continue
		}
		u, _ := strconv.ParseInt(f[14-3], 10, 64)
		st, _ := strconv.ParseInt(f[15-3], 10, 64)
		t[pid] = time.Duration(u+st) * time.Second / clockTicks
	}
	return t, nil
}

// kthreadsSince is the kernel threads' CPU from t0 (kthreadTimes) to now:
// each thread alive now counts what it used since t0, or all of its time
// if it started since. Kworkers come and go; one that exited meanwhile
// takes its time with it, so this undercounts a little.
func kthreadsSince(t0 map[int]time.Duration) (time.Duration, error) {
	t1, err := kthreadTimes()
	if err != nil {
		return 0, err
	}
	var d time.Duration
	for pid, c := range t1 {
		d += max(0, c-t0[pid])
	}
	return d, nil
}

// writeback writes back every dirty page of the machine (sync(2)) and
// returns the CPU that took: the kernel threads' (the flushers, the
// journal) and this process's system time, which is sync's own. Run
// right after a produce phase, it is the writeback a broker that
// acknowledges from the page cache (Kafka) leaves for later, outside its
// own CPU time; for a broker that fsyncs before acknowledging it is near
// zero, that work being in its system time already. Other processes'
// dirty pages count too: on a busy machine it is an upper bound.
func writeback() (time.Duration, error) {
	k0, err := kthreadTimes()
	if err != nil {
		return 0, err
	}
	var r0, r1 syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r0); err != nil {
		return 0, err
	}
	syscall.Sync()
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r1); err != nil {
		return 0, err
	}
	k, err := kthreadsSince(k0)
	if err != nil {
		return 0, err
	}
	return k + time.Duration(r1.Stime.Nano()-r0.Stime.Nano()), nil
}

// cpuMeter measures one phase: the broker's CPU time, and how busy the
// rest of the machine was — processes other than the broker and this
// benchmark, such as a build or test run by someone else, which skew the
// figures on a two-core machine.
type cpuMeter struct {
	c       *cluster
	t0      time.Time
	broker0 []time.Duration // per broker process
	others0 time.Duration
	sys0    time.Duration         // the brokers' system CPU, summed
	kthr0   map[int]time.Duration // kernel threads' CPU, by pid
	client0 time.Duration         // this process's CPU

	// sys and kthreads are, once stop has returned, the brokers' system
	// CPU (summed) and the kernel threads' CPU over the phase; client is
	// this process's CPU over it: the benchmark's clients (producers,
	// consumers, their callbacks) with the little the benchmark adds.
	sys, kthreads, client time.Duration
}

// benchPIDs are the processes of the benchmark itself: this one, its
// parent (`go run`) and the brokers, which the other-load figure leaves
// out.
func benchPIDs(c *cluster) []int { return append([]int{os.Getpid(), os.Getppid()}, c.pids()...) }

func startCPU(c *cluster) (*cpuMeter, error) {
	m := &cpuMeter{c: c, t0: time.Now()}
	var err error
	if m.broker0, err = c.cpu(); err != nil {
		return nil, err
	}
	if m.others0, err = otherCPU(benchPIDs(c)...); err != nil {
		return nil, err
	}
	if m.sys0, err = c.sysCPU(); err != nil {
		return nil, err
	}
	if m.kthr0, err = kthreadTimes(); err != nil {
		return nil, err
	}
	if m.client0, err = procCPU(os.Getpid()); err != nil {
		return nil, err
	}
	return m, nil
}

// stop returns each broker process's CPU time since start, and the
// average number of cores the other user-space processes kept busy
// meanwhile.
func (m *cpuMeter) stop() (brokers []time.Duration, otherCores float64, err error) {
	b1, err := m.c.cpu()
	if err != nil {
		return nil, 0, err
	}
	o1, err := otherCPU(benchPIDs(m.c)...)
	if err != nil {
		return nil, 0, err
	}
	for i := range b1 {
		b1[i] -= m.broker0[i]
	}
	sys, err := m.c.sysCPU()
	if err != nil {
		return nil, 0, err
	}
	kthr, err := kthreadsSince(m.kthr0)
	if err != nil {
		return nil, 0, err
	}
	client, err := procCPU(os.Getpid())
	if err != nil {
		return nil, 0, err
	}
	m.sys, m.kthreads, m.client = sys-m.sys0, kthr, client-m.client0
	return b1, max(0, (o1-m.others0).Seconds()/time.Since(m.t0).Seconds()), nil
}

// sum is the total of d.
func sum(d []time.Duration) time.Duration {
	var t time.Duration
	for _, x := range d {
		t += x
	}
	return t
}

// machineLoad returns how many cores the machine's user-space processes,
// other than this one, kept busy on average over the next window.
func machineLoad(window time.Duration) (float64, error) {
	skip := []int{os.Getpid(), os.Getppid()}
	o0, err := otherCPU(skip...)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	time.Sleep(window) // sampling counters over a window: nothing to wait on
	o1, err := otherCPU(skip...)
	if err != nil {
		return 0, err
	}
	return max(0, (o1-o0).Seconds()/time.Since(t0).Seconds()), nil
}

// waitIdle waits, up to limit, until the other processes have kept fewer
// than maxCores busy for two consecutive 2-second windows, and returns the
// last load it saw.
func waitIdle(limit time.Duration, maxCores float64, prog *progress) float64 {
	deadline := time.Now().Add(limit)
	quiet := 0
	for {
		load, err := machineLoad(2 * time.Second)
		if err != nil {
			return -1
		}
		if load < maxCores {
			if quiet++; quiet == 2 {
				return load
			}
			continue
		}
		quiet = 0
		if time.Now().After(deadline) {
			prog.printf("machine still busy (%.2f cores) after waiting %v; measuring anyway", load, limit)
			return load
		}
		prog.printf("machine busy (%.2f cores used by other processes); waiting for it to go idle", load)
	}
}

// dropPageCache writes back dirty pages and has the kernel let go of its
// clean page cache, dentries and inodes (/proc/sys/vm/drop_caches),
// which takes root.
func dropPageCache() error {
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return fmt.Errorf("-drop-caches: %w", err)
	}
	return nil
}
