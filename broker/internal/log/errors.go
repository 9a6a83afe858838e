package log

import "errors"

// Sentinel errors. Errors returned by the package wrap one of these when
// they apply; test with errors.Is.
var (
	// ErrOffsetOutOfRange is returned by Read for an offset below the log
	// start offset or above the log end offset.
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
	// ErrCorrupt reports a batch that fails validation: bad length,
	// magic, CRC or record count, in appended input or on disk.
	ErrCorrupt = errors.New("log: corrupt record batch")
	// ErrMessageTooLarge reports a batch larger than MaxMessageBytes.
	ErrMessageTooLarge = errors.New("log: record batch larger than max.message.bytes")
	// ErrUnsupportedCompression reports a batch whose attributes name a
	// compression codec that does not exist (Kafka's
	// UNSUPPORTED_COMPRESSION_TYPE).
	ErrUnsupportedCompression = errors.New("log: unsupported compression codec")
	// ErrInvalidRecord reports a batch that is well formed but may not be
	// appended: a control batch from a client, a producer id without an
	// epoch or sequence, a transactional batch without a producer id
	// (Kafka's INVALID_RECORD).
	ErrInvalidRecord = errors.New("log: invalid record batch")
	// ErrClosed is returned by every method once the log is closed.
	ErrClosed = errors.New("log: closed")
)
