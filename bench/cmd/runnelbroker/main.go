// Command runnelbroker runs Runnel's broker in its own process for
// brokerbench, so that the benchmark can read the broker's CPU time from
// /proc. It is the same broker.Start the runnel command line uses, with the
// default configuration: every acknowledged batch is fsynced (group commit).
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
	flag.Parse()

	if err := run(*dataDir, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "runnelbroker:", err)
		os.Exit(1)
	}
}

func run(dataDir, listen string) error {
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

	b, err := broker.Start(ctx, broker.Config{DataDir: dataDir, Listen: listen})
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
