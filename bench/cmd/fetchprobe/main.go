// Command fetchprobe looks at one consumer's fetches against one broker:
// it starts a broker (Runnel's bench/cmd/runnelbroker binary, or Apache
// Kafka from scripts/fetch-kafka.sh's install), produces records as
// brokerbench's single-client workloads do (one franz-go producer,
// acks=all, linger 1 ms, no compression, 6 partitions), then reads them all
// from the start with brokerbench's consumer, counting per Fetch response
// its bytes, its partitions with records, its batches, how long the client
// waited for it (the broker's time plus the request's trip) and how long
// reading it took, and the CPU of the broker and of this process.
//
//	go run ./cmd/fetchprobe -broker runnel=/tmp/rb -records 600000
//	go run ./cmd/fetchprobe -broker kafka -records 600000
//
// It is a measuring tool for issue 17's consume work, not a benchmark of
// record: brokerbench is that.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/bench/internal/procstat"
	"github.com/runnel-dev/runnel/internal/kafkapeer"
)

func main() {
	broker := flag.String("broker", "", "runnel=BIN (a bench/cmd/runnelbroker binary), ceiling=BIN (bench/cmd/fetchceiling), ceiling-writev=BIN (the same with -writev), ceiling-disk=BIN (its files on the data directory's file system) or kafka")
	records := flag.Int("records", 600000, "records to produce, then consume")
	size := flag.Int("size", 1024, "value bytes")
	partitions := flag.Int("partitions", 6, "partitions")
	rounds := flag.Int("rounds", 3, "consume the topic this many times (a new consumer each time)")
	kafkaHome := flag.String("kafka-home", "", "Kafka install (default: what scripts/fetch-kafka.sh prints)")
	scripts := flag.String("scripts", "../scripts", "the repository's scripts/ directory")
	settle := flag.Duration("settle", 0, "leave the broker idle this long after it answers, before producing (as brokerbench -settle: Runnel takes its direct-writes cache while idle)")
	flag.Parse()
	if err := run(*broker, *records, *size, *partitions, *rounds, *settle, *kafkaHome, *scripts); err != nil {
		fmt.Fprintln(os.Stderr, "fetchprobe:", err)
		os.Exit(1)
	}
}

func run(broker string, records, size, partitions, rounds int, settle time.Duration, kafkaHome, scripts string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "fetchprobe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd, addr, err := start(ctx, broker, dir, kafkaHome, scripts)
	if err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	pid := cmd.Process.Pid
	fmt.Printf("broker %s pid %d at %s\n", broker, pid, addr)

	time.Sleep(settle) // an idle broker is the point: nothing to wait on
	const topic = "probe"
	if err := produce(ctx, addr, topic, records, size, partitions, pid); err != nil {
		return err
	}
	for i := 0; i < rounds; i++ {
		if err := consume(ctx, addr, topic, records, pid); err != nil {
			return err
		}
	}
	return nil
}

// start runs the broker and returns it with its client address once it
// answers metadata.
func start(ctx context.Context, broker, dir, kafkaHome, scripts string) (*exec.Cmd, string, error) {
	var cmd *exec.Cmd
	var addr string
	switch {
	case strings.HasPrefix(broker, "runnel="), strings.HasPrefix(broker, "ceiling="), strings.HasPrefix(broker, "ceiling-writev="), strings.HasPrefix(broker, "ceiling-disk="):
		port, err := kafkapeer.FreePort()
		if err != nil {
			return nil, "", err
		}
		addr = fmt.Sprintf("127.0.0.1:%d", port)
		name, bin, _ := strings.Cut(broker, "=")
		cmd = exec.Command(bin, "-listen", addr)
		switch name {
		case "runnel":
			cmd.Args = append(cmd.Args, "-data-dir", filepath.Join(dir, "data"))
		case "ceiling-writev":
			cmd.Args = append(cmd.Args, "-writev")
		case "ceiling-disk":
			cmd.Args = append(cmd.Args, "-shm", dir)
		}
	case broker == "kafka":
		if kafkaHome == "" {
			out, err := exec.CommandContext(ctx, filepath.Join(scripts, "fetch-kafka.sh")).Output()
			if err != nil {
				return nil, "", fmt.Errorf("fetch-kafka.sh: %w", err)
			}
			kafkaHome = strings.TrimSpace(string(out))
		}
		in := kafkapeer.Install{Home: kafkaHome, Tool: filepath.Join(scripts, "kafka-tool.sh")}
		node, err := kafkapeer.NewNode(filepath.Join(dir, "data"))
		if err != nil {
			return nil, "", err
		}
		props, err := in.Format(ctx, node, dir)
		if err != nil {
			return nil, "", err
		}
		// brokerbench's JVM flags, Kafka's own.
		cmd = in.Command(context.Background(), "-Xmx1G -Xms1G", "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true", "kafka.Kafka", props)
		addr = node.Addr()
	default:
		return nil, "", fmt.Errorf("-broker %q: want runnel=BIN, ceiling=BIN or kafka", broker)
	}
	logf, err := os.Create(filepath.Join(dir, "broker.log"))
	if err != nil {
		return nil, "", err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(120 * time.Second)
	for {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err == nil {
			_, err = kadm.NewClient(cl).BrokerMetadata(ctx)
			cl.Close()
		}
		if err == nil {
			return cmd, addr, nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, "", fmt.Errorf("broker not ready: %w", err)
		}
		time.Sleep(200 * time.Millisecond) // polling a starting process: nothing to wait on
	}
}

func produce(ctx context.Context, addr, topic string, records, size, partitions, pid int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.DefaultProduceTopic(topic),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, int32(partitions), 1, nil, topic); err != nil {
		return err
	}
	val := make([]byte, size)
	var wg sync.WaitGroup
	var failed atomic.Value
	b0, err := procstat.CPU(pid)
	if err != nil {
		return err
	}
	start := time.Now()
	for i := 0; i < records; i++ {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	el := time.Since(start)
	b1, _ := procstat.CPU(pid)
	gb := float64(records) * float64(size) / 1e9
	fmt.Printf("produced %d records of %d B in %v: %.0f rec/s; broker CPU %.2f s (%.3f s/GB in)\n", records, size, el.Round(time.Millisecond),
		float64(records)/el.Seconds(), (b1 - b0).Seconds(), (b1-b0).Seconds()/gb)
	return nil
}

// fetchStats are the hooks' counts.
type fetchStats struct {
	mu        sync.Mutex
	fetches   int
	bytes     []int           // per Fetch response
	readWait  []time.Duration // request written to response's first bytes
	readTime  []time.Duration // reading the response
	batches   int
	batchSize []int
	parts     map[int]int // partitions with records per response: count
	cur       map[int32]bool
}

func (s *fetchStats) OnBrokerRead(_ kgo.BrokerMetadata, key int16, n int, wait, read time.Duration, err error) {
	if key != 1 || err != nil {
		return
	}
	s.mu.Lock()
	s.fetches++
	s.bytes = append(s.bytes, n)
	s.readWait = append(s.readWait, wait)
	s.readTime = append(s.readTime, read)
	s.mu.Unlock()
}

func (s *fetchStats) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, p int32, m kgo.FetchBatchMetrics) {
	s.mu.Lock()
	s.batches++
	s.batchSize = append(s.batchSize, m.CompressedBytes)
	s.mu.Unlock()
}

func consume(ctx context.Context, addr, topic string, want, pid int) error {
	st := &fetchStats{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.WithHooks(st),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	b0, err := procstat.CPU(pid)
	if err != nil {
		return err
	}
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	got, polls := 0, 0
	var nb int64
	for got < want {
		fs := cl.PollFetches(ctx)
		for _, fe := range fs.Errors() {
			return fmt.Errorf("%s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
		}
		polls++
		fs.EachRecord(func(r *kgo.Record) { nb += int64(len(r.Value)) })
		got += fs.NumRecords()
	}
	el := time.Since(start)
	b1, _ := procstat.CPU(pid)
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	self := tv(ru1.Utime) + tv(ru1.Stime) - tv(ru0.Utime) - tv(ru0.Stime)
	st.mu.Lock()
	defer st.mu.Unlock()
	gb := float64(nb) / 1e9
	fmt.Printf("consume: %d rec in %v: %.0f rec/s %.0f MB/s; broker CPU %.2f s (%.3f s/GB), client CPU %.2f s (%.3f s/GB); polls %d\n",
		got, el.Round(time.Millisecond), float64(got)/el.Seconds(), float64(nb)/el.Seconds()/1e6,
		(b1 - b0).Seconds(), (b1-b0).Seconds()/gb, self.Seconds(), self.Seconds()/gb, polls)
	fmt.Printf("  fetch responses %d: bytes p10/p50/p90 %s, mean %.0f KB; client waited (readWait) p50 %v p90 %v sum %v; reading p50 %v p90 %v sum %v\n",
		st.fetches, pcts(st.bytes), mean(st.bytes)/1e3,
		pct(st.readWait, 50), pct(st.readWait, 90), sumd(st.readWait).Round(time.Millisecond),
		pct(st.readTime, 50), pct(st.readTime, 90), sumd(st.readTime).Round(time.Millisecond))
	fmt.Printf("  batches %d (%.1f per response), bytes p10/p50/p90 %s\n", st.batches, float64(st.batches)/float64(max(st.fetches, 1)), pcts(st.batchSize))
	return nil
}

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}

func pcts(v []int) string {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return "-"
	}
	at := func(p int) int { return s[min(len(s)-1, len(s)*p/100)] }
	return fmt.Sprintf("%d/%d/%d", at(10), at(50), at(90))
}

func mean(v []int) float64 {
	t := 0
	for _, x := range v {
		t += x
	}
	return float64(t) / float64(max(len(v), 1))
}

func pct(v []time.Duration, p int) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, len(s)*p/100)].Round(time.Microsecond)
}

func sumd(v []time.Duration) time.Duration {
	var t time.Duration
	for _, x := range v {
		t += x
	}
	return t
}
