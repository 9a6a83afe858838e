package history

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// LoadConfig configures Load.
type LoadConfig struct {
	// Brokers are the bootstrap addresses.
	Brokers []string
	// Topic receives the load; it must exist.
	Topic string
	// Acks is the producers' acks: -1 (all), 1 or 0. It has no
	// default: 0 is a real choice.
	Acks int
	// Idempotent turns on the idempotent producer; it needs Acks -1.
	Idempotent bool
	// Producers is the number of producer clients. Default 1.
	Producers int
	// Keys is the number of distinct keys, spread over the partitions
	// by the default partitioner. Default 64.
	Keys int
	// MaxBuffered bounds each producer's records in flight. Default 200.
	MaxBuffered int
	// Consume runs a consumer that reads the topic from its start while
	// the load runs and records what it reads, so the checker can see a
	// record that was read and later gone.
	Consume bool
	// ClientOpts are added to every client, for example a
	// faultinject.RouteDialer or shorter timeouts.
	ClientOpts []kgo.Opt
}

func (c *LoadConfig) ensureDefaults() error {
	if c.Producers == 0 {
		c.Producers = 1
	}
	if c.Keys == 0 {
		c.Keys = 64
	}
	if c.MaxBuffered == 0 {
		c.MaxBuffered = 200
	}
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("no topic"))
	}
	if c.Acks != -1 && c.Acks != 0 && c.Acks != 1 {
		errs = append(errs, fmt.Errorf("acks %d: want -1, 0 or 1", c.Acks))
	}
	if c.Idempotent && c.Acks != -1 {
		errs = append(errs, fmt.Errorf("an idempotent producer needs acks -1, not %d", c.Acks))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("history: load config: %w", err)
	}
	return nil
}

// Load produces unique values ("p<producer>-<n>") to one topic from
// franz-go producers as fast as they are acknowledged, records every
// outcome in a Recorder and, with Consume, what a concurrent consumer
// reads. Stop ends it; its goroutines end by then.
type Load struct {
	cfg   LoadConfig
	rec   *Recorder
	stop  chan struct{}
	wg    sync.WaitGroup // producer loops and the consumer
	sends sync.WaitGroup // records whose promise has not run

	producers []*kgo.Client
	consumer  *kgo.Client
	cancel    context.CancelFunc // ends the consumer's poll

	acked, failed atomic.Int64
	consumed      atomic.Int64 // records the live consumer read
}

// StartLoad starts the load described by cfg, recording into rec.
func StartLoad(cfg LoadConfig, rec *Recorder) (*Load, error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	l := &Load{cfg: cfg, rec: rec, stop: make(chan struct{})}
	for i := 0; i < cfg.Producers; i++ {
		opts := []kgo.Opt{
			kgo.SeedBrokers(cfg.Brokers...),
			kgo.DefaultProduceTopic(cfg.Topic),
			kgo.MaxBufferedRecords(cfg.MaxBuffered),
		}
		switch cfg.Acks {
		case -1:
			opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
		case 1:
			opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
		case 0:
			opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
		}
		if !cfg.Idempotent {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
		cl, err := kgo.NewClient(append(opts, cfg.ClientOpts...)...)
		if err != nil {
			l.closeClients()
			return nil, fmt.Errorf("history: load producer: %w", err)
		}
		l.producers = append(l.producers, cl)
	}
	if cfg.Consume {
		cl, err := kgo.NewClient(append([]kgo.Opt{
			kgo.SeedBrokers(cfg.Brokers...),
			kgo.ConsumeTopics(cfg.Topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		}, cfg.ClientOpts...)...)
		if err != nil {
			l.closeClients()
			return nil, fmt.Errorf("history: load consumer: %w", err)
		}
		l.consumer = cl
		ctx, cancel := context.WithCancel(context.Background())
		l.cancel = cancel
		l.wg.Add(1)
		go l.consume(ctx)
	}
	for i, cl := range l.producers {
		l.wg.Add(1)
		go l.produce(i, cl)
	}
	return l, nil
}

// Acked is the number of sends acknowledged so far.
func (l *Load) Acked() int64 { return l.acked.Load() }

// Failed is the number of sends that failed so far.
func (l *Load) Failed() int64 { return l.failed.Load() }

// Consumed is the number of records the live consumer (Consume) has read
// so far. It starts late: its metadata and offset lookups take round
// trips the producers may already have filled with hundreds of sends.
func (l *Load) Consumed() int64 { return l.consumed.Load() }

func (l *Load) produce(id int, cl *kgo.Client) {
	defer l.wg.Done()
	for n := 0; ; n++ {
		select {
		case <-l.stop:
			return
		default:
		}
		r := &kgo.Record{
			Key:   []byte("k" + strconv.Itoa(n%l.cfg.Keys)),
			Value: []byte("p" + strconv.Itoa(id) + "-" + strconv.Itoa(n)),
		}
		l.sends.Add(1)
		// Background: a record's fate is the cluster's to decide, not
		// the stop's; Stop flushes, then closes, which fails the rest.
		cl.Produce(context.Background(), r, l.promise)
	}
}

func (l *Load) promise(r *kgo.Record, err error) {
	defer l.sends.Done()
	s := Send{Topic: r.Topic, Partition: r.Partition, Key: string(r.Key), Value: string(r.Value), Offset: r.Offset, Err: err}
	if err != nil {
		s.Offset = -1
		l.failed.Add(1)
	} else {
		l.acked.Add(1)
	}
	if l.cfg.Acks == 0 {
		s.Offset = -1 // no answer, so no offset
	}
	l.rec.Send(s)
}

// consume records what it reads, one scan per partition; a partition
// whose offsets go back (the consumer reset after its offset fell off
// the log) begins a new scan.
func (l *Load) consume(ctx context.Context) {
	defer l.wg.Done()
	scans := map[int32]*ScanLog{}
	for ctx.Err() == nil {
		fs := l.consumer.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			s := scans[r.Partition]
			if s == nil {
				s = l.rec.BeginScan(r.Topic, r.Partition, r.Offset)
				scans[r.Partition] = s
			}
			rec := Record{Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)}
			if !s.Add(rec) {
				s = l.rec.BeginScan(r.Topic, r.Partition, r.Offset)
				scans[r.Partition] = s
				s.Add(rec)
			}
			l.consumed.Add(1)
		})
	}
}

// Stop ends the load: no new sends, then up to flushTimeout for the ones
// in flight to be answered; the rest fail as the clients close. It
// returns once every outcome is recorded and every goroutine ended.
func (l *Load) Stop(flushTimeout time.Duration) {
	close(l.stop)
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	for _, cl := range l.producers {
		// Unblock a producer loop waiting for buffer room, then give
		// what is buffered its chance.
		cl.Flush(ctx)
	}
	if l.cancel != nil {
		l.cancel()
	}
	l.closeClients()
	l.wg.Wait()
	l.sends.Wait()
}

func (l *Load) closeClients() {
	for _, cl := range l.producers {
		cl.Close()
	}
	if l.consumer != nil {
		l.consumer.Close()
	}
}

// ReadAll reads every partition of topic from its log start to its high
// watermark and records each as a scan that read to the end: the final
// read Check compares the sends with. Records of aborted transactions
// are not expected (the read is read_uncommitted).
func ReadAll(ctx context.Context, rec *Recorder, brokers []string, topic string, opts ...kgo.Opt) error {
	adm, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return fmt.Errorf("history: read-back client: %w", err)
	}
	defer adm.Close()
	ka := kadm.NewClient(adm)
	starts, err := ka.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("history: read-back start offsets: %w", err)
	}
	ends, err := ka.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("history: read-back end offsets: %w", err)
	}

	from := map[int32]kgo.Offset{}
	scans := map[int32]*ScanLog{}
	hw := map[int32]int64{}
	starts.Each(func(o kadm.ListedOffset) {
		from[o.Partition] = kgo.NewOffset().At(o.Offset)
		scans[o.Partition] = rec.BeginScan(topic, o.Partition, o.Offset)
	})
	ends.Each(func(o kadm.ListedOffset) { hw[o.Partition] = o.Offset })
	pending := 0
	for p, s := range scans {
		if s.Next() >= hw[p] {
			s.Finish(hw[p])
		} else {
			pending++
		}
	}
	if pending == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
	}, opts...)...)
	if err != nil {
		return fmt.Errorf("history: read-back consumer: %w", err)
	}
	defer cl.Close()
	for pending > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("history: read-back of %s: %d partitions short of their end: %w", topic, pending, err)
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) {
			ferr = fmt.Errorf("history: read-back of %s/%d: %w", topic, p, err)
		})
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			s := scans[r.Partition]
			if s.Next() >= hw[r.Partition] {
				return // read past the end listed; the end is what counts
			}
			s.Add(Record{Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)})
			if s.Next() >= hw[r.Partition] {
				s.Finish(hw[r.Partition])
				pending--
			}
		})
	}
	return nil
}
