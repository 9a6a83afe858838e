package runnel

import (
	"testing"
	"time"
)

// retryBackoff follows Java's: 100 ms doubling to 1 s, within ±20%.
func TestRetryBackoff(t *testing.T) {
	for _, c := range []struct {
		tries int
		base  time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {3, 400 * time.Millisecond}, {4, 800 * time.Millisecond}, {5, time.Second}, {30, time.Second}} {
		for range 100 {
			d := retryBackoff(c.tries)
			if lo, hi := c.base*8/10, c.base*12/10; d < lo || d > hi {
				t.Fatalf("retryBackoff(%d) = %v, want %v..%v", c.tries, d, lo, hi)
			}
		}
	}
}
