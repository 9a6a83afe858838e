package stream

import "time"

// SetReplaceBackoff sets the backoff of worker replacements for a test and
// returns a function restoring it.
func SetReplaceBackoff(lo, hi time.Duration) (restore func()) {
	oldLo, oldHi := replaceBackoffMin, replaceBackoffMax
	replaceBackoffMin, replaceBackoffMax = lo, hi
	return func() { replaceBackoffMin, replaceBackoffMax = oldLo, oldHi }
}
