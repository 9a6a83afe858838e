// Package log is one partition's log on disk: an append-only sequence of
// segments holding Kafka RecordBatch v2 bytes exactly as producers sent
// them, with sparse offset and time indexes, roll, retention, group-commit
// fsync and crash recovery.
//
// # On-disk format
//
// A log is a directory. Each segment is named by its base offset, the first
// offset it may hold, zero-padded to 20 digits as Kafka names them:
//
//	00000000000000000000.log        RecordBatch v2 bytes, back to back
//	00000000000000000000.index      offset index: 8-byte entries
//	00000000000000000000.timeindex  time index: 12-byte entries
//	00000000000000004211.log        the next segment, base offset 4211
//	...
//	log-start-offset                checkpoint: the log start offset, decimal
//	leader-epoch-checkpoint         leader epochs and their start offsets (epochs.go)
//
// A batch in a .log file is the producer's batch with the base offset
// (bytes 0-8) and partition leader epoch (bytes 12-16) overwritten; both lie
// outside the CRC'd region, so the CRC stays valid. A LogAppendTime topic
// also sets the timestamp-type attribute and the max timestamp and
// recomputes the CRC. Records are never re-encoded.
//
// The offset index maps a batch's base offset, relative to the segment's
// base (uint32, big endian), to the byte position of the batch in the .log
// (uint32). It holds one entry per IndexIntervalBytes of log, so a lookup
// is a binary search followed by a short scan of batch headers.
//
// The time index holds (max timestamp so far int64, relative base offset of
// the batch that first reached it uint32): an entry when the segment's max
// timestamp has grown and IndexIntervalBytes have passed since the last one,
// and a final exact entry when the segment is rolled or closed. Every batch
// before an entry's offset has a smaller max timestamp, which is what makes
// a floor lookup followed by a forward scan correct.
//
// Index entries are kept in memory and written out, each file in one write,
// when a segment is rolled, when the log closes and during recovery. They
// are hints: Open rebuilds an index that is missing or inconsistent with
// its .log, and always rescans the newest segment, checking every batch's
// length and CRC and cutting off a torn tail.
//
// # Concurrency
//
// One appender at a time: Append, and the writers inside the package
// (roll, retention, SetStartOffset, Close), serialise on an internal
// mutex. Readers (Read, StartOffset, EndOffset, Size, MaxTimestamp,
// OffsetForTimestamp) run concurrently with the appender and each other:
// they snapshot a segment's published size and index under a read lock and
// then pread the file without locks. Bytes past the published size may be
// being written; readers never look at them. A segment deleted by retention
// while a read is in flight has its file closed; the read sees os.ErrClosed
// and retries its lookup, which then finds the new log start. WaitFlushed
// serialises fsyncs on a flush mutex so that every caller queued behind an
// fsync shares the next one (group commit).
//
// The logs sharing a TailCache send their group commits' synchronized
// writes to its commit ring (ring_linux.go), one goroutine submitting
// them all through one io_uring; an active segment whose commits are
// small has zeros written ahead of its appends by a goroutine of its own
// (zeroahead.go), so that those writes overwrite blocks the file has.
// Both stop before the files they write are closed.
//
// Lock order: appendMu, then flushMu, then mu.
package log
