package log

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// Readers, flushers and retention run against an appender; every read
// returns whole valid batches or a clean out-of-range, never garbage.
func TestConcurrentReadersAppenderRetention(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	cfg.SegmentBytes = 16 << 10
	cfg.IndexIntervalBytes = 256
	cfg.RetentionBytes = 48 << 10
	l := openLog(t, t.TempDir(), cfg, WithClock(clk.Now))

	const appends = 1000
	var done atomic.Bool
	var wg sync.WaitGroup
	fail := make(chan error, 16)
	report := func(err error) {
		select {
		case fail <- err:
		default:
		}
	}
	pre := make([][]byte, 16)
	for i := range pre {
		pre[i] = makeBatch(t, batchSpec{n: 1 + i%5, value: 20 + 7*i, firstTs: int64(i)})
	}

	wg.Add(1)
	go func() { // the appender
		defer wg.Done()
		defer done.Store(true)
		for i := 0; i < appends; i++ {
			b := append([]byte(nil), pre[i%len(pre)]...)
			if _, err := l.Append(b, 1); err != nil {
				report(err)
				return
			}
		}
	}()
	wg.Add(1)
	go func() { // retention
		defer wg.Done()
		for !done.Load() {
			if _, err := l.EnforceRetention(clk.Now()); err != nil {
				report(err)
				return
			}
		}
	}()
	wg.Add(1)
	go func() { // durability
		defer wg.Done()
		for !done.Load() {
			if err := l.WaitFlushed(l.EndOffset()); err != nil {
				report(err)
				return
			}
		}
	}()
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) { // readers: tail from the start, and lookups
			defer wg.Done()
			off := int64(0)
			for !done.Load() {
				end := l.EndOffset()
				res, err := l.Read(off, int32(100+r*1000), end)
				if errors.Is(err, ErrOffsetOutOfRange) {
					off = l.StartOffset()
					continue
				}
				if err != nil {
					report(err)
					return
				}
				if len(res.Records) == 0 {
					continue
				}
				hs, err := parseRead(res.Records)
				if err != nil {
					report(err)
					return
				}
				if hs[0].lastOffset() < off || hs[len(hs)-1].lastOffset() >= end {
					report(errors.New("read returned batches outside the asked range"))
					return
				}
				off = hs[len(hs)-1].lastOffset() + 1
				l.MaxTimestamp()
				if _, _, _, err := l.OffsetForTimestamp(int64(r * 3)); err != nil {
					report(err)
					return
				}
				_ = l.Size() + l.StartOffset()
			}
		}(r)
	}
	wg.Wait()
	close(fail)
	for err := range fail {
		t.Fatal(err)
	}
	checkInvariants(t, l)
	if l.StartOffset() == 0 {
		t.Fatal("retention never ran")
	}
	readAll(t, l, 1<<20)
}

// parseRead is checkBatchesRead returning an error, for goroutines.
func parseRead(recs []byte) ([]batchHeader, error) {
	var hs []batchHeader
	for p := 0; p < len(recs); {
		if len(recs)-p < batchHeaderSize {
			return nil, errors.New("partial header")
		}
		h, err := parseHeader(recs[p:])
		if err != nil {
			return nil, err
		}
		if int64(len(recs)-p) < h.size || !crcOK(recs[p:p+int(h.size)]) {
			return nil, errors.New("partial or corrupt batch")
		}
		if len(hs) > 0 && h.baseOffset != hs[len(hs)-1].lastOffset()+1 {
			return nil, errors.New("batches out of order")
		}
		hs = append(hs, h)
		p += int(h.size)
	}
	return hs, nil
}

// Close while readers and a flusher run: they get ErrClosed, not a panic.
func TestCloseUnderLoad(t *testing.T) {
	l, err := Open(t.TempDir(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 3, value: 100}))
	}
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, err := l.Read(0, 1<<20, l.EndOffset())
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				if err := l.WaitFlushed(l.EndOffset()); errors.Is(err, ErrClosed) {
					return
				}
			}
		}()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}
