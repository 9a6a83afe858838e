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

// PauseInput makes a's workers pause, and resume, the input partitions f
// returns, called on every turn of their loops. Set it before Start.
func PauseInput(a *App, f func() (pause, resume map[string][]int32)) { a.pauseInput = f }

// HoldGlobal makes a's global store updater apply no record after its
// bootstrap while hold returns true. Set it before Start.
func HoldGlobal(a *App, hold func() bool) { a.holdGlobal = hold }

// BeforeRestoreCommit makes a's restorations call f before each of their
// commits, on the goroutine that commits. Set it before Start.
func BeforeRestoreCommit(a *App, f func()) { a.beforeRestoreCommit = f }

// SetRestoreCheckpointBytes sets how much a restoration applies between
// two commits, for a test, and returns a function restoring it.
func SetRestoreCheckpointBytes(n int) (restore func()) {
	old := restoreCheckpointBytes
	restoreCheckpointBytes = n
	return func() { restoreCheckpointBytes = old }
}
