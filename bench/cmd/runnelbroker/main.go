// Command runnelbroker runs Runnel's broker in its own process for
// brokerbench, so that the benchmark can read the broker's CPU time from
// /proc. It is the same broker.Start the runnel command line uses, with the
// default configuration: every acknowledged batch is fsynced (group commit).
//
// Like the runnel command line, it sets the Go runtime's memory limit
// derived from the broker's budgets (broker.Config.DerivedMemoryLimit,
// 1 GiB) unless GOMEMLIMIT is set or -memory-limit says otherwise (0: none).
//
// It prints "runnel broker listening on HOST:PORT" once it accepts
// connections and runs until SIGINT or SIGTERM.
//
// Environment:
//
//	RUNNEL_CPUPROFILE=FILE   write a CPU profile of the whole run to FILE
//	RUNNEL_MEMPROFILE=FILE   write a heap (alloc) profile to FILE on exit
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/runnel-dev/runnel/broker"
)

func main() {
	dataDir := flag.String("data-dir", "", "broker data directory (required)")
	listen := flag.String("listen", "127.0.0.1:0", "Kafka protocol listener address")
	memoryLimit := flag.Int64("memory-limit", -1, "the Go runtime's memory limit in bytes; 0: none; default: derived from the budgets unless GOMEMLIMIT is set")
	flag.Parse()

	cfg := broker.Config{DataDir: *dataDir, Listen: *listen, MemoryLimit: *memoryLimit}
	if *memoryLimit < 0 {
		cfg.MemoryLimit = 0
		if os.Getenv("GOMEMLIMIT") == "" {
			cfg.EnsureDefaults()
			cfg.MemoryLimit = cfg.DerivedMemoryLimit()
		}
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "runnelbroker:", err)
		os.Exit(1)
	}
}

func run(cfg broker.Config) error {
	if path := os.Getenv("RUNNEL_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	b, err := broker.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("runnel broker listening on %s\n", b.Addr())

	<-ctx.Done()
	err = b.Close()

	if path := os.Getenv("RUNNEL_MEMPROFILE"); path != "" {
		if werr := writeHeapProfile(path); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}
