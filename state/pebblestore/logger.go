package pebblestore

import (
	"context"
	"fmt"
	"log/slog"
)

// slogLogger passes Pebble's messages to a slog.Logger: its information
// at DEBUG, so that flushes and compactions do not crowd an application's
// log, and its fatal errors at ERROR before Pebble's contract (Fatalf does
// not return) is kept with a panic. A nil logger discards.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Infof(format string, args ...any) {
	if s.l != nil && s.l.Enabled(context.Background(), slog.LevelDebug) {
		s.l.Debug("pebble: " + fmt.Sprintf(format, args...))
	}
}

func (s slogLogger) Fatalf(format string, args ...any) {
	msg := "pebble: " + fmt.Sprintf(format, args...)
	if s.l != nil {
		s.l.Error(msg)
	}
	panic(msg)
}
