package main

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// progress prints what the benchmark is doing to stderr: one line per
// step, and a counter every couple of seconds during long phases.
type progress struct {
	w      io.Writer
	start  time.Time
	prefix string
}

func (p *progress) printf(format string, args ...any) {
	el := time.Since(p.start).Round(100 * time.Millisecond)
	fmt.Fprintf(p.w, "[%7s] %s"+format+"\n", append([]any{el, p.prefix}, args...)...)
}

// watch reports *n every 2 seconds until the returned stop is called. When
// hasTotal, the report shows n out of total.
func (p *progress) watch(n *atomic.Int64, total int64, hasTotal bool) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		begin := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				v := n.Load()
				rate := float64(v) / now.Sub(begin).Seconds()
				if hasTotal {
					p.printf("  %s / %s records (%s/s)", count(v), count(total), count(int64(rate)))
				} else {
					p.printf("  %s records (%s/s)", count(v), count(int64(rate)))
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// count formats n compactly: 1234567 -> "1.23M".
func count(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fG", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	default:
		return fmt.Sprint(n)
	}
}
