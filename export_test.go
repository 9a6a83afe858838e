package runnel

import "time"

// SetReplaceBackoff sets the backoff of worker replacements for a test and
// returns a function restoring it.
func SetReplaceBackoff(lo, hi time.Duration) (restore func()) {
	oldLo, oldHi := replaceBackoffMin, replaceBackoffMax
	replaceBackoffMin, replaceBackoffMax = lo, hi
	return func() { replaceBackoffMin, replaceBackoffMax = oldLo, oldHi }
}

// HoldRestore makes a's workers leave their restorations alone while hold
// returns true, without blocking their loops. Set it before Start.
func HoldRestore(a *App, hold func() bool) { a.holdRestore = hold }
