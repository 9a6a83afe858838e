package runnel

// SetRestoreHook makes a's runner call fn, on its goroutine, as each task
// starts restoring; fn may block to hold the task in restoration. Set it
// before Start.
func SetRestoreHook(a *App, fn func(task string)) {
	a.queries.onRestore = func(k taskKey) { fn(k.String()) }
}
