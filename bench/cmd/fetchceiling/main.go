// Command fetchceiling is brokerbench's consume ceiling: a Kafka-protocol
// broker that keeps every produced batch in memory as it arrived and
// answers each Fetch by writing the stored batches with one writev, the
// response framed around them. It does no I/O but the socket's, no
// copying, no encoding of records: what a consumer reads from it is the
// most any broker can serve that client on this machine, and its CPU per
// GB out is the floor of sending bytes over loopback TCP from memory.
//
// It is a measuring device, not a broker: one node, no replication, no
// durability, no groups, no transactions, no fetch sessions; only what
// brokerbench's producers and plain consumers use (ApiVersions, Metadata,
// CreateTopics, InitProducerID, Produce, ListOffsets, Fetch v4-v11).
//
// It prints "fetchceiling listening on HOST:PORT" once it accepts
// connections and runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "Kafka protocol listener address")
	writev := flag.Bool("writev", false, "keep batches in the Go heap and write fetches with writev, rather than in tmpfs files sent with sendfile")
	shm := flag.String("shm", "/dev/shm", "tmpfs directory for the batches (unlinked files)")
	flag.Parse()
	dir := *shm
	if *writev {
		dir = ""
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fetchceiling:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s := newServer(ln.Addr().(*net.TCPAddr), dir)
	fmt.Printf("fetchceiling listening on %s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	s.serve(ctx, ln)
}
