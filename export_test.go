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

// WatchQueues sets a's hold bound for a partition behind (see
// maxHoldBehind), and calls queued with the records a worker's tasks hold
// queued after each turn, dropped with those a revocation drops. Set it
// before Start; nil functions are not called.
func WatchQueues(a *App, holdBehind time.Duration, queued, dropped func(n int)) {
	a.holdBehind, a.queued, a.revokedQueued = holdBehind, queued, dropped
}

// AbortCommits makes a's workers abort the transactions that commit
// offsets while abort returns true. Set it before Start.
func AbortCommits(a *App, abort func() bool) { a.abortCommit = abort }

// LoseEndAnswers makes a's workers take a transaction that committed
// offsets as failed, as if the coordinator's answer was lost, while lose
// returns true: the worker waits for the answer until the commit's time is
// out (see SetCommitTimeout). Set it before Start.
func LoseEndAnswers(a *App, lose func() bool) { a.loseEndAnswer = lose }

// LoseProducedEndAnswers is LoseEndAnswers for the transactions that
// committed output but no offsets (wall-clock punctuation after input
// stops). Set it before Start.
func LoseProducedEndAnswers(a *App, lose func() bool) { a.loseProducedEndAnswer = lose }

// SetCommitTimeout sets how long a commit may take, for a test, and
// returns a function restoring it.
func SetCommitTimeout(d time.Duration) (restore func()) {
	old := commitTimeout
	commitTimeout = d
	return func() { commitTimeout = old }
}

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
