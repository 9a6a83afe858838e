package log

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CleanerConfig configures a Cleaner. NewCleaner calls EnsureDefaults.
type CleanerConfig struct {
	// IOBytesPerSecond is log.cleaner.io.max.bytes.per.second: the bytes
	// cleaning may read and write per second, across every log. Default
	// DefaultCleanerIOBytesPerSecond; negative means unlimited (Kafka's
	// default).
	IOBytesPerSecond float64
	// Backoff is log.cleaner.backoff.ms: how long the cleaner waits when
	// no log needs cleaning. Default 15s.
	Backoff time.Duration
	// Now is the clock for compaction lags and delete horizons. Default
	// time.Now; the broker passes its injected clock.
	Now func() time.Time
	// Logger receives cleaning errors. Default: discard.
	Logger *slog.Logger
}

// Cleaner defaults.
const (
	DefaultCleanerIOBytesPerSecond = 64 << 20
	DefaultCleanerBackoff          = 15 * time.Second
)

// EnsureDefaults fills the zero fields.
func (c *CleanerConfig) EnsureDefaults() {
	if c.IOBytesPerSecond == 0 {
		c.IOBytesPerSecond = DefaultCleanerIOBytesPerSecond
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultCleanerBackoff
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// String prints the values in force.
func (c *CleanerConfig) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "log.cleaner.io.max.bytes.per.second=%v\n", c.IOBytesPerSecond)
	fmt.Fprintf(&b, "log.cleaner.backoff.ms=%d\n", c.Backoff.Milliseconds())
	return b.String()
}

// CleanerStats are a Cleaner's running totals.
type CleanerStats struct {
	// Runs counts cleans that rewrote something.
	Runs int64
	// BytesCleaned counts segment bytes read by those cleans.
	BytesCleaned int64
	// RecordsRemoved counts records they removed.
	RecordsRemoved int64
	// Failures counts cleans that failed.
	Failures int64
}

// Cleaner compacts the logs added to it, in one background goroutine that
// cleans the dirtiest due log first, under a shared I/O throttle. Logs
// whose policy is not compact are skipped. Close stops it.
type Cleaner struct {
	cfg CleanerConfig
	th  *throttle

	mu sync.Mutex // guards the following
	// logs are the registered logs; a true value marks one whose last
	// clean failed on corrupt data, skipped until added again.
	logs map[*Log]bool
	// busy is the log being cleaned by the goroutine, abort closed to
	// stop that clean; idle is signalled when busy clears.
	busy   *Log
	abort  chan struct{}
	idle   *sync.Cond
	closed bool

	runs, bytes, removed, failures atomic.Int64

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

// NewCleaner starts a cleaner.
func NewCleaner(cfg CleanerConfig) *Cleaner {
	cfg.EnsureDefaults()
	c := &Cleaner{
		cfg:  cfg,
		th:   newThrottle(cfg.IOBytesPerSecond),
		logs: make(map[*Log]bool),
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
	}
	c.idle = sync.NewCond(&c.mu)
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.run() }()
	return c
}

// Add registers a log. Adding it again clears a failure mark.
func (c *Cleaner) Add(l *Log) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.logs[l] = false
	c.wake()
}

// Remove unregisters a log, stopping a clean of it in progress and waiting
// for it to end, so the log can then be closed or deleted.
func (c *Cleaner) Remove(l *Log) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.logs, l)
	if c.busy == l && c.abort != nil {
		close(c.abort)
		c.abort = nil
	}
	for c.busy == l {
		c.idle.Wait()
	}
}

// Wake makes the cleaner look for work now rather than after its backoff.
func (c *Cleaner) Wake() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wake()
}

func (c *Cleaner) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Close stops the cleaner, abandoning a clean in progress (its staged
// files are removed; the log is unchanged), and waits for its goroutine.
func (c *Cleaner) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.abort != nil {
		close(c.abort)
		c.abort = nil
	}
	close(c.stop)
	c.mu.Unlock()
	c.wg.Wait()
}

// Stats returns the running totals.
func (c *Cleaner) Stats() CleanerStats {
	return CleanerStats{Runs: c.runs.Load(), BytesCleaned: c.bytes.Load(), RecordsRemoved: c.removed.Load(), Failures: c.failures.Load()}
}

// CleanAll cleans every registered log that is due, now, in the caller's
// goroutine and without the throttle (tests and tools). It returns the
// errors joined.
func (c *Cleaner) CleanAll(now time.Time) error {
	c.mu.Lock()
	logs := make([]*Log, 0, len(c.logs))
	for l := range c.logs {
		logs = append(logs, l)
	}
	c.mu.Unlock()
	var errs []error
	for _, l := range logs {
		st, err := l.clean(now, nil, nil)
		c.account(l, st, err)
		if err != nil && !ignorableCleanError(err) {
			errs = append(errs, fmt.Errorf("%s: %w", l.dir, err))
		}
	}
	return errors.Join(errs...)
}

func ignorableCleanError(err error) bool {
	return errors.Is(err, ErrClosed) || errors.Is(err, errCleanStopped) || errors.Is(err, errCleanRaced)
}

// account adds a clean's outcome to the totals.
func (c *Cleaner) account(l *Log, st CleanStats, err error) {
	if st.Cleaned {
		c.runs.Add(1)
		c.bytes.Add(st.BytesRead)
		c.removed.Add(st.RecordsRemoved)
	}
	if err == nil || ignorableCleanError(err) {
		return
	}
	c.failures.Add(1)
	c.cfg.Logger.Error("log cleaning failed", "dir", l.dir, "err", err)
	if errors.Is(err, ErrCorrupt) {
		c.mu.Lock()
		if _, ok := c.logs[l]; ok {
			c.logs[l] = true
		}
		c.mu.Unlock()
	}
}

func (c *Cleaner) run() {
	timer := time.NewTimer(c.cfg.Backoff)
	defer timer.Stop()
	for {
		if !c.cleanDirtiest() {
			timer.Reset(c.cfg.Backoff)
			select {
			case <-c.stop:
				return
			case <-c.kick:
			case <-timer.C:
			}
		}
		select {
		case <-c.stop:
			return
		default:
		}
	}
}

// cleanDirtiest cleans the due log with the highest dirty ratio and
// reports whether there was one.
func (c *Cleaner) cleanDirtiest() bool {
	now := c.cfg.Now()
	c.mu.Lock()
	var cands []*Log
	for l, failed := range c.logs {
		if !failed {
			cands = append(cands, l)
		}
	}
	c.mu.Unlock()
	var best *Log
	bestRatio := -1.0
	for _, l := range cands {
		if !l.Config().CleanupPolicy.Compact() {
			continue
		}
		p, err := l.planClean(now.UnixMilli())
		if err != nil || !p.due {
			continue
		}
		if p.ratio > bestRatio {
			best, bestRatio = l, p.ratio
		}
	}
	if best == nil {
		return false
	}
	c.mu.Lock()
	if _, ok := c.logs[best]; !ok || c.closed {
		c.mu.Unlock()
		return false
	}
	abort := make(chan struct{})
	c.busy, c.abort = best, abort
	c.mu.Unlock()

	st, err := best.clean(now, c.th, abort)

	c.mu.Lock()
	c.busy = nil
	if c.abort == abort {
		c.abort = nil
	}
	c.idle.Broadcast()
	c.mu.Unlock()
	c.account(best, st, err)
	return st.Cleaned
}

// throttle paces cleaning I/O to a rate in bytes per second, shared by
// every clean of a Cleaner.
type throttle struct {
	rate  float64 // <= 0: unlimited
	now   func() time.Time
	sleep func(d time.Duration, stop <-chan struct{}) bool

	mu   sync.Mutex // guards next
	next time.Time  // when the bytes taken so far are paid for
}

func newThrottle(rate float64) *throttle {
	return &throttle{rate: rate, now: time.Now, sleep: sleepOrStop}
}

// sleepOrStop waits d, or until stop closes (false).
func sleepOrStop(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// take accounts for n bytes and waits until the rate allows them.
func (t *throttle) take(n int64, stop <-chan struct{}) error {
	if t == nil || t.rate <= 0 || n <= 0 {
		return nil
	}
	t.mu.Lock()
	now := t.now()
	if t.next.Before(now) {
		t.next = now
	}
	t.next = t.next.Add(time.Duration(float64(n) / t.rate * float64(time.Second)))
	wait := t.next.Sub(now)
	t.mu.Unlock()
	// Short waits are let through and paid for by the next long one.
	if wait < 10*time.Millisecond {
		return nil
	}
	if !t.sleep(wait, stop) {
		return errCleanStopped
	}
	return nil
}
