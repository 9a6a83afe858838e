// Command kfakebroker runs franz-go's kfake as a one-broker cluster in its
// own process, with on-disk persistence and, by default, an fsync per
// produced batch. It is the kfake peer of brokerbench: a test fake measured
// against, never part of Runnel.
//
// It prints "kfake listening on HOST:PORT" once it accepts connections and
// runs until SIGINT or SIGTERM. With -blackhole it stores nothing and
// acknowledges every produce at once: the benchmark's measure of what the
// client and the loopback network can do on their own.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	dataDir := flag.String("data-dir", "", "directory for kfake's persisted data (required)")
	port := flag.Int("port", 0, "port to listen on; 0 picks a free one")
	sync := flag.Bool("sync", true, "fsync every produced batch (kfake.SyncWrites)")
	blackhole := flag.Bool("blackhole", false, "acknowledge produced records without storing them (kfake.BlackholeProduce); no -data-dir")
	flag.Parse()
	if *blackhole {
		run(kfake.NumBrokers(1), kfake.Ports(*port), kfake.BlackholeProduce())
		return
	}
	if *dataDir == "" {
		fmt.Fprintln(os.Stderr, "kfakebroker: -data-dir is required")
		os.Exit(2)
	}

	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(*port),
		kfake.DataDir(*dataDir),
	}
	if *sync {
		opts = append(opts, kfake.SyncWrites())
	}
	run(opts...)
}

func run(opts ...kfake.Opt) {
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfakebroker:", err)
		os.Exit(1)
	}
	fmt.Printf("kfake listening on %s\n", c.ListenAddrs()[0])

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	c.Close()
}
