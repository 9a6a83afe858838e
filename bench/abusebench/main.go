// Command abusebench measures the resident memory of Runnel's broker, in
// its own process (bench/cmd/runnelbroker, default configuration), under
// many well-behaved clients and under each attack of the broker's abuse
// suite (broker/abuse*_test.go), each on a fresh broker. For each phase it
// prints the RSS before, the peak while the phase ran, the RSS 5 seconds
// after its clients stopped, and the broker's open descriptors then.
//
//	cd bench && go run ./abusebench            # about 3 minutes
//	cd bench && go run ./abusebench -quick     # smaller attacks, under a minute
//	cd bench && go run ./abusebench -only slow,stalled   # some phases
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	quick    = flag.Bool("quick", false, "smaller attacks")
	only     = flag.String("only", "", "run only the phases whose name contains one of these comma-separated words")
	memLimit = flag.String("memory-limit", "", "passed to the broker as -memory-limit (default: the broker's own, derived from its budgets; 0: none)")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "abusebench:", err)
		os.Exit(1)
	}
}

func size(full, small int) int {
	if *quick {
		return small
	}
	return full
}

func run() error {
	tmp, err := os.MkdirTemp("", "abusebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "runnelbroker")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/runnel-dev/runnel/bench/cmd/runnelbroker").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, out)
	}
	fmt.Printf("each phase on a fresh broker (bench/cmd/runnelbroker, default configuration, -memory-limit %q)\n\n", *memLimit)
	fmt.Printf("%-48s %8s %9s %10s %6s\n", "phase", "idle MiB", "peak MiB", "after MiB", "fds")

	steps := []struct {
		name   string
		topics map[string]int32
		fill   int // bytes produced to "big" before the phase
		fn     func(addr string) error
	}{
		{"idle", nil, 0, func(string) error { return nil }},
		{fmt.Sprintf("%d clients, produce + consume 1 KiB records", size(200, 50)), map[string]int32{"load": 6}, 0,
			func(addr string) error { return manyClients(addr, size(200, 50)) }},
		{"8 senders stalled 1 byte short of 100 MiB", nil, 0,
			func(addr string) error { return slowSenders(addr, 8, 100<<20) }},
		{"300 abandoned long polls (MaxWait 2^31-1)", map[string]int32{"quiet": 1}, 0,
			func(addr string) error { return abandonedPolls(addr, 300) }},
		{fmt.Sprintf("10 clients x 64 pipelined fetches of %d MiB, unread", size(40, 8)), map[string]int32{"big": 1}, size(40, 8) << 20,
			func(addr string) error { return pipelinedFetches(addr, 10, 64) }},
		{fmt.Sprintf("20 slow readers fetching %d MiB (fetch.max.bytes 64 MiB)", size(40, 8)), map[string]int32{"big": 1}, size(40, 8) << 20,
			func(addr string) error { return slowReaders(addr, 20, 15*time.Second) }},
		{fmt.Sprintf("both: 8 stalled senders + 20 slow readers of %d MiB", size(40, 8)), map[string]int32{"big": 1}, size(40, 8) << 20,
			func(addr string) error {
				errs := make(chan error, 1)
				go func() { errs <- slowSenders(addr, 8, 100<<20) }()
				err := slowReaders(addr, 20, 15*time.Second)
				if serr := <-errs; err == nil {
					err = serr
				}
				return err
			}},
		{"OffsetFetch v7, 5.6 M topics in 16 MiB", nil, 0,
			func(addr string) error { return offsetFetchAmplification(addr, 16<<20) }},
		{fmt.Sprintf("4 zstd bombs (%d MiB of zeros) + ListOffsets", size(1<<10, 64)), map[string]int32{"load": 1}, 0,
			func(addr string) error { return zstdBombs(addr, 4, size(1<<30, 64<<20)) }},
		{"CreateTopics with 100,000 partitions", nil, 0, hugeTopic},
	}
	for i, s := range steps {
		if !selected(s.name) {
			continue
		}
		if err := phase(bin, filepath.Join(tmp, fmt.Sprint("data", i)), s.name, s.topics, s.fill, s.fn); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

func selected(name string) bool {
	if *only == "" {
		return true
	}
	for _, w := range strings.Split(*only, ",") {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// phase runs fn against a fresh broker and prints its RSS when idle, at
// its peak while fn ran, and 5 seconds after fn returned, and its open
// descriptors then.
func phase(bin, dir, name string, topics map[string]int32, fill int, fn func(addr string) error) error {
	args := []string{"-data-dir", dir}
	if *memLimit != "" {
		args = append(args, "-memory-limit", *memLimit)
	}
	cmd := exec.Command(bin, args...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return err
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "runnel broker listening on "))
	pid := cmd.Process.Pid
	if len(topics) > 0 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			return err
		}
		for t, n := range topics {
			if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), n, 1, nil, t); err != nil {
				cl.Close()
				return err
			}
		}
		cl.Close()
	}
	if fill > 0 {
		if err := fillTopic(addr, "big", fill); err != nil {
			return err
		}
	}
	time.Sleep(2 * time.Second)
	idle := rss(pid)

	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if r := rss(pid); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	err = fn(addr)
	time.Sleep(5 * time.Second) // the broker notices closed clients
	close(stop)
	wg.Wait()
	fmt.Printf("%-48s %8.0f %9.0f %10.0f %6d\n", name, mib(idle), mib(peak.Load()), mib(rss(pid)), fds(pid))
	return err
}

func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func fds(pid int) int {
	e, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(e)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func manyClients(addr string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	value := make([]byte, 1024)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("load"))
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			for range 500 {
				cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				})
			}
			cl.Flush(ctx)
		}()
		go func() {
			defer wg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("load"), kgo.ClientID(fmt.Sprint("c", i)))
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			got := 0
			for got < 500 && ctx.Err() == nil {
				got += cl.PollFetches(ctx).NumRecords()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// fillTopic produces n bytes of 100 KiB records to topic, uncompressed:
// franz-go would otherwise compress the zeros to almost nothing.
func fillTopic(addr, topic string, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return err
	}
	defer cl.Close()
	v := make([]byte, 100<<10)
	for i := 0; i < n/len(v); i++ {
		cl.Produce(context.Background(), &kgo.Record{Value: v}, nil)
	}
	return cl.Flush(context.Background())
}

func dial(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }

func frame(req kmsg.Request, corr int32) []byte {
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 5)
	b = append(b, "abuse"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func slowSenders(addr string, n, frameSize int) error {
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	chunk := make([]byte, 1<<20)
	for range n {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		conns = append(conns, c)
		hdr := binary.BigEndian.AppendUint32(nil, uint32(frameSize))
		hdr = append(hdr, 0, 0, 0, 9)
		c.Write(hdr)
		// Send all but one byte, in the background: the broker reads
		// only as many frames as the budget allows.
		go func() {
			left := frameSize - 4 - 1
			for left > 0 {
				k := min(left, len(chunk))
				c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(chunk[:k]); err != nil {
					return
				}
				left -= k
			}
		}()
	}
	time.Sleep(10 * time.Second)
	return nil
}

func fetchReq(topic string, maxWait int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.ReplicaID = -1
	req.MaxWaitMillis = maxWait
	req.MinBytes = 1
	req.MaxBytes = 64 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 64 << 20
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func abandonedPolls(addr string, n int) error {
	for i := range n {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		// An empty topic: the fetch waits for data that never comes.
		c.Write(frame(fetchReq("quiet", 1<<31-1), int32(i)))
		c.Close()
	}
	return nil
}

func pipelinedFetches(addr string, clients, depth int) error {
	var conns []net.Conn
	for range clients {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		conns = append(conns, c)
		for i := range depth {
			c.Write(frame(fetchReq("big", 500), int32(i)))
		}
	}
	time.Sleep(10 * time.Second)
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// slowReaders has each of n clients fetch the whole of "big" over and over
// for d, reading each response at about 3 MiB/s: the broker holds what it
// has built for them until they have read it.
func slowReaders(addr string, n int, d time.Duration) error {
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial(addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			buf := make([]byte, 64<<10)
			for corr := int32(i << 16); time.Now().Before(deadline); corr++ {
				if _, err := c.Write(frame(fetchReq("big", 500), corr)); err != nil {
					errs <- err
					return
				}
				var size [4]byte
				c.SetReadDeadline(time.Now().Add(time.Minute))
				if _, err := io.ReadFull(c, size[:]); err != nil {
					errs <- err
					return
				}
				for left := int(binary.BigEndian.Uint32(size[:])); left > 0; {
					k, err := c.Read(buf[:min(left, len(buf))])
					if err != nil {
						errs <- err
						return
					}
					left -= k
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func offsetFetchAmplification(addr string, frameSize int) error {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.SetVersion(7)
	req.Group = "g"
	req.Topics = make([]kmsg.OffsetFetchRequestTopic, frameSize/3)
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.Write(frame(req, 1))
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var b [4]byte
	c.Read(b[:]) // the broker closes the connection, or answers
	return nil
}

func zstdBombs(addr string, n, zeros int) error {
	var rec []byte
	rec = append(rec, 0)
	rec = binary.AppendVarint(rec, 0)
	rec = binary.AppendVarint(rec, 0)
	rec = binary.AppendVarint(rec, -1)
	rec = binary.AppendVarint(rec, int64(zeros))
	var out bytes.Buffer
	enc, _ := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedFastest))
	enc.Write(binary.AppendVarint(nil, int64(len(rec)+zeros+1)))
	enc.Write(rec)
	z := make([]byte, 1<<20)
	for left := zeros; left > 0; left -= len(z) {
		enc.Write(z[:min(left, len(z))])
	}
	enc.Write([]byte{0})
	enc.Close()
	batch := make([]byte, 61, 61+out.Len())
	batch = append(batch, out.Bytes()...)
	binary.BigEndian.PutUint32(batch[8:], uint32(len(batch)-12))
	batch[16] = 2
	binary.BigEndian.PutUint16(batch[21:], 4)
	binary.BigEndian.PutUint64(batch[43:], ^uint64(0))
	binary.BigEndian.PutUint16(batch[51:], 0xffff)
	binary.BigEndian.PutUint32(batch[53:], 0xffffffff)
	binary.BigEndian.PutUint32(batch[57:], 1)
	binary.BigEndian.PutUint32(batch[17:], crc32.Checksum(batch[21:], crc32.MakeTable(crc32.Castagnoli)))

	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial(addr)
			if err != nil {
				return
			}
			defer c.Close()
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(9)
			req.Acks, req.TimeoutMillis = -1, 10000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = "load"
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = batch
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			c.Write(frame(req, int32(i)))
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			var b [4]byte
			c.Read(b[:])
			// Then ask for the offset by timestamp, which decompresses.
			lo := kmsg.NewPtrListOffsetsRequest()
			lo.SetVersion(4)
			lo.ReplicaID = -1
			lt := kmsg.NewListOffsetsRequestTopic()
			lt.Topic = "load"
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Timestamp = 0
			lp.CurrentLeaderEpoch = -1
			lt.Partitions = append(lt.Partitions, lp)
			lo.Topics = append(lo.Topics, lt)
			c.Write(frame(lo, int32(100+i)))
			c.Read(b[:])
		}()
	}
	wg.Wait()
	return nil
}

func hugeTopic(addr string) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(4)
	req.TimeoutMillis = 60000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "huge", 100000, 1
	req.Topics = append(req.Topics, rt)
	c.Write(frame(req, 1))
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	var b [4]byte
	_, err = c.Read(b[:])
	return err
}
