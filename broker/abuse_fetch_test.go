package broker_test

import (
	"encoding/binary"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Slow readers (queued.max.response.bytes): many clients fetch the whole
// of a large partition with a large fetch.max.bytes and read their
// responses slowly. What the broker holds for them stays within the fetch
// budget, and a consumer among them still reads every record.
func TestAbuseSlowFetchReaders(t *testing.T) {
	const budget = 8 << 20
	b := testutil.StartBroker(t, broker.Config{QueuedMaxResponseBytes: budget})
	createTopic(t, newAdmin(t, b.Addr()), "wide", 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("wide"), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression())) // the zeros would compress to nothing
	value := make([]byte, 100<<10)
	records := abuseSize(16<<20, 64<<20) / len(value)
	for range records {
		cl.Produce(testContext(t), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(testContext(t)); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	readers := abuseSize(8, 20)
	responses := make([]int, readers)
	for i := range readers {
		rc := dialRaw(t, b.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			slowFetches(t, rc, stop, &responses[i])
		}()
	}
	waitFor(t, 30*time.Second, "slow readers hold nothing", func() bool { return b.FetchResponseBytesInUse() > 0 })

	// A consumer among them reads every record.
	cons := newClient(t, b.Addr(), kgo.ConsumeTopics("wide"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	deadline := time.Now().Add(2 * time.Minute)
	for got < records {
		if time.Now().After(deadline) {
			t.Fatalf("consumer read %d of %d records beside the slow readers", got, records)
		}
		fs := cons.PollRecords(testContext(t), 1000)
		fs.EachError(func(_ string, _ int32, err error) { t.Errorf("consume: %v", err) })
		got += fs.NumRecords()
	}
	close(stop)
	wg.Wait()

	peak := b.FetchResponseBytesPeak()
	t.Logf("fetch responses held at most %.1f MiB (budget %d MiB); slow readers read %v responses", float64(peak)/(1<<20), budget>>20, responses)
	if peak > budget {
		t.Fatalf("fetch responses held %d bytes, over queued.max.response.bytes %d", peak, budget)
	}
	waitFor(t, 10*time.Second, "fetch budget not given back", func() bool { return b.FetchResponseBytesInUse() == 0 })
}

// slowFetches fetches "wide" from offset 0 over and over, reading each
// response at about 3 MiB/s, until stop is closed; n counts the responses
// read whole.
func slowFetches(t *testing.T, rc *rawConn, stop <-chan struct{}, n *int) {
	go func() { <-stop; rc.nc.Close() }()
	buf := make([]byte, 32<<10)
	for corr := int32(0); ; corr++ {
		rc.nc.SetDeadline(time.Now().Add(time.Minute))
		if _, err := rc.nc.Write(frame(fetchRequest("wide", 500, 1), corr)); err != nil {
			return
		}
		var size [4]byte
		if _, err := io.ReadFull(rc.nc, size[:]); err != nil {
			return
		}
		for left := int(binary.BigEndian.Uint32(size[:])); left > 0; {
			k, err := rc.nc.Read(buf[:min(left, len(buf))])
			if err != nil {
				return
			}
			left -= k
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		*n++
	}
}
