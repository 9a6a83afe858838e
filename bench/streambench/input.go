package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// input is a workload's pre-produced input: n records made by gen.
type input struct {
	topic string
	n     int64
	// gen returns record i; it is called in order, from one goroutine.
	gen func(i int64) *kgo.Record
}

// produce writes in's records to the broker at addr as fast as one franz-go
// producer goes (acks=all, idempotent, linger 1 ms, no compression: the
// settings of brokerbench) and waits for every acknowledgement.
func (b *bench) produce(addr string, in input) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(100_000),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now()
	var (
		mu   sync.Mutex
		perr error
	)
	for i := range in.n {
		rec := in.gen(i)
		rec.Topic = in.topic
		cl.Produce(b.ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				perr = cmpOr(perr, err)
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(b.ctx); err != nil {
		return err
	}
	if perr != nil {
		return fmt.Errorf("produce to %s: %w", in.topic, perr)
	}
	el := time.Since(start)
	b.prog.printf("produced %d records to %s in %v (%.0f records/s)", in.n, in.topic, el.Round(time.Millisecond), float64(in.n)/el.Seconds())
	return nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// wordLines makes lines of 3 to 7 words (5 on average) drawn uniformly
// from a vocabulary of vocab words, without keys. It returns the input and
// the number of words in it, which the app's repartition step carries as
// records of their own.
func wordLines(topic string, n int64, vocab int) (input, int64) {
	words := make([]string, vocab)
	for i := range words {
		words[i] = fmt.Sprintf("word%05d", i)
	}
	// The lines are generated twice (here to count their words, then while
	// producing) from the same seed.
	newRand := func() *rand.Rand { return rand.New(rand.NewPCG(7, 7)) }
	var total int64
	rng := newRand()
	for range n {
		k := 3 + rng.IntN(5)
		total += int64(k)
		for range k {
			rng.IntN(vocab)
		}
	}
	rng = newRand()
	var sb strings.Builder
	gen := func(int64) *kgo.Record {
		sb.Reset()
		for j := range 3 + rng.IntN(5) {
			if j > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(words[rng.IntN(vocab)])
		}
		return &kgo.Record{Value: []byte(sb.String())}
	}
	return input{topic: topic, n: n, gen: gen}, total
}

// keyLines makes lines of 4 words each, every word distinct across the
// input, so a word count over them holds one key per word: keys words in
// ceil(keys/4) lines.
func keyLines(topic string, keys int64) input {
	const perLine = 4
	n := (keys + perLine - 1) / perLine
	gen := func(i int64) *kgo.Record {
		var sb strings.Builder
		for j := range int64(perLine) {
			k := i*perLine + j
			if k >= keys {
				break
			}
			if j > 0 {
				sb.WriteByte(' ')
			}
			fmt.Fprintf(&sb, "key%08d", k)
		}
		return &kgo.Record{Value: []byte(sb.String())}
	}
	return input{topic: topic, n: n, gen: gen}
}

// Bids for q5: 10 bids per millisecond of event time, so 1,000,000 bids
// span 100 s and every 10 s window holds about 100,000 of them.
const (
	bidsPerMs = 10
	auctions  = 10_000
)

// bidEpoch is the event time of the first bid.
var bidEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// bids makes n bids keyed by auction id (uniform over 10,000 auctions),
// each valued with a bidder id and a price (16 bytes), timestamped with
// its event time: bidEpoch plus i/bidsPerMs milliseconds.
func bids(topic string, n int64) input {
	rng := rand.New(rand.NewPCG(5, 5))
	gen := func(i int64) *kgo.Record {
		v := binary.BigEndian.AppendUint64(nil, rng.Uint64N(100_000))
		v = binary.BigEndian.AppendUint64(v, 100+rng.Uint64N(10_000))
		return &kgo.Record{
			Key:       fmt.Appendf(nil, "auction%05d", rng.IntN(auctions)),
			Value:     v,
			Timestamp: bidEpoch.Add(time.Duration(i/bidsPerMs) * time.Millisecond),
		}
	}
	return input{topic: topic, n: n, gen: gen}
}

// produceOne writes one record and waits for its acknowledgement.
func produceOne(ctx context.Context, addr string, rec *kgo.Record) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	return cl.ProduceSync(ctx, rec).FirstErr()
}
