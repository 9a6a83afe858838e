package main

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The restore-bulk workload's application and topics.
const (
	bulkApp    = "bulk"
	bulkInput  = "bulk-lines"
	bulkOutput = "bulk-counts"
)

// bulkRestore writes a changelog of about b.restoreMB MB of keys and values
// of b.restoreValue bytes straight to the changelog topic of the word
// count's store (no application builds it: the store's size is then a
// flag, not minutes of processing), then times a fresh instance restoring
// it. A tenth of the records overwrite an earlier key and one in twenty
// deletes one (a tombstone), as a store's changelog has them; the topic
// is compacted, as the runtime creates it.
func (b *bench) bulkRestore() error {
	if err := b.createTopics(bulkInput, bulkOutput); err != nil {
		return err
	}
	changelog := topology.ChangelogTopic(bulkApp, "counts")
	compact := "compact"
	resp, err := b.adm.CreateTopics(b.ctx, partitions, 1, map[string]*string{"cleanup.policy": &compact}, changelog)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", changelog, err)
	}
	if err := resp.Error(); err != nil {
		return fmt.Errorf("create topic %s: %w", changelog, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.broker.Addr()), kgo.ProducerLinger(time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	var (
		mu   sync.Mutex
		perr error
	)
	rng := rand.New(rand.NewPCG(1, 2))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
	n := max(b.restoreMB*1_000_000/int64(b.restoreValue+16), 1)
	var keys int64 // distinct keys written so far
	start := time.Now()
	for i := range n {
		var key []byte
		var value []byte
		switch {
		case keys > 0 && i%20 == 19:
			key = fmt.Appendf(nil, "key-%011d", rng.Int64N(keys)) // a tombstone
		case keys > 0 && i%10 == 9:
			key = fmt.Appendf(nil, "key-%011d", rng.Int64N(keys)) // an overwrite
			fallthrough
		default:
			if key == nil {
				key = fmt.Appendf(nil, "key-%011d", keys)
				keys++
			}
			value = make([]byte, b.restoreValue)
			for j := range value {
				value[j] = letters[rng.IntN(len(letters))]
			}
		}
		cl.Produce(b.ctx, &kgo.Record{Topic: changelog, Key: key, Value: value}, func(_ *kgo.Record, err error) {
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
		return fmt.Errorf("produce the changelog: %w", perr)
	}
	b.prog.printf("restore-bulk: %d changelog records over %d keys written in %v", n, keys, time.Since(start).Round(time.Millisecond))
	var res *restoreResult
	err = b.profiled("restore-bulk", func() (err error) {
		res, err = b.timeRestore(bulkApp, bulkInput, bulkOutput, "state-bulk")
		return err
	})
	if err != nil {
		return err
	}
	res.keys = keys
	b.bulk = res
	return nil
}
