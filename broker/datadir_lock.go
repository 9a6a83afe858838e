package broker

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// lockFileName is the data dir's lock file, as Kafka's log dirs have a
// ".lock": a broker holds an exclusive lock on it while it runs, and writes
// its pid into it so that a second broker can say who holds the dir.
const lockFileName = ".lock"

// DataDirInUseError is Start's error when another broker, in this process
// or another, holds the data dir.
type DataDirInUseError struct {
	Dir string
	PID int // the holder's pid as it wrote it, 0 when unreadable
}

func (e *DataDirInUseError) Error() string {
	pid := "unknown"
	if e.PID > 0 {
		pid = strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("broker: data dir %s is in use by another broker (pid %s)", e.Dir, pid)
}

// lockDataDir takes the data dir's lock without waiting: the metadata
// store's own file lock waits forever, deaf to any signal, so this lock
// must be first. The lock lasts until the returned file is closed, or the
// process ends however it ends, so a crash leaves no stale lock behind.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("broker: data dir lock: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &DataDirInUseError{Dir: dir, PID: readPID(path)}
		}
		return nil, fmt.Errorf("broker: data dir lock %s: %w", path, err)
	}
	// The pid is for the message above only; the lock is what counts.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// readPID reads the pid a lock holder wrote, or 0.
func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return 0
	}
	return pid
}
