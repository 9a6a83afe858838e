package runnel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrAppRunning is returned by CleanUp on an App that is running.
var ErrAppRunning = errors.New("stream: app is running")

// embeddedBrokerDir is the part of an application's state directory that
// holds the embedded broker's log (see startEmbedded): the input and output
// topics live there, so CleanUp keeps it.
const embeddedBrokerDir = "broker"

// CleanUp deletes the application's local state: the directory
// StateDir/<application id> with its stores and instance id, except the
// data of the embedded broker. The next Start rebuilds the stores from
// their changelogs, or starts empty once the internal topics were deleted
// too (runnel reset). It is Kafka Streams' KafkaStreams.cleanUp: call it
// before Start or after Close; it returns ErrAppRunning in between.
func (a *App) CleanUp() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil {
		return ErrAppRunning
	}
	dir := filepath.Join(a.opts.StateDir, a.opts.ApplicationID)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream: clean up: %w", err)
	}
	for _, e := range entries {
		if e.Name() == embeddedBrokerDir && len(a.opts.Brokers) == 0 {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("stream: clean up: %w", err)
		}
	}
	return nil
}
