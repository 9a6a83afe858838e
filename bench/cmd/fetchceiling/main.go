// Command fetchceiling is brokerbench's consume ceiling: a Kafka-protocol
// broker that keeps the produced batches as they arrived and answers each
// Fetch with the stored batches, the response framed around them: no
// reading, no copying, no encoding of records. What a consumer reads
// from it is the most any broker can serve that client on this machine.
//
// Two modes. By default the batches go to unlinked files on tmpfs
// (-shm, memory still) and fetches send them with sendfile between
// corked writes of the framing: a broker that is nothing but sendfile,
// whose CPU per GB out is the floor of that way of sending. With -writev
// the batches stay in the heap and each response is one writev: the floor
// of sending from memory (brokerbench runs this one); there a
// partition's batches that every connection fetching it has fetched are
// dropped, so that its heap reuses their memory rather than growing into
// pages new to the process, as Runnel's broker drops its page cache
// behind its readers (-keep-read keeps them all). Accepted
// connections get a 256 KiB send buffer (-sndbuf), as Runnel's broker
// gives them: with the kernel's autotuned one, megabytes, sending over
// loopback costs more and consumers read slower.
//
// It is a measuring device, not a broker: one node, no replication, no
// durability, no transactions, no fetch sessions; only what brokerbench's
// producers, plain consumers and group consumers use (ApiVersions,
// Metadata, CreateTopics, InitProducerID, Produce, ListOffsets, Fetch
// v4-v11, and an in-memory group coordinator: FindCoordinator,
// JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
// OffsetFetch), so that the many-clients workload's consumer groups run
// against it as against a broker.
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
	keepRead := flag.Bool("keep-read", false, "keep every batch; by default, with -writev, a partition's batches that every connection fetching it has fetched are dropped, so the heap reuses their memory as Runnel's broker reuses its page cache")
	sndbuf := flag.Int("sndbuf", 256<<10, "send buffer (SO_SNDBUF) of each accepted connection, as Runnel's broker sets it by default; 0 leaves the kernel's autotuning")
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
	s.sndbuf = *sndbuf
	s.keepRead = *keepRead
	fmt.Printf("fetchceiling listening on %s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	s.serve(ctx, ln)
}
