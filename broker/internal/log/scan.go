package log

import (
	"errors"
	"fmt"
	"io"
)

// scanWindow is how much of a segment a scanner reads at a time.
const scanWindow = 256 << 10

// errTorn reports a batch that runs past the end of the scanned range: a
// torn tail during recovery.
var errTorn = errors.New("log: batch runs past the end of the segment")

// scanner walks the batches of a segment file from a batch boundary,
// reading it in windows so a walk costs a syscall per window, not per
// batch.
type scanner struct {
	f     io.ReaderAt // the file, or a view that reads its tail cache
	pos   int64       // file position of the next batch
	limit int64       // end of the bytes that may be read

	win    []byte // file bytes from winPos
	winPos int64
}

func newScanner(f io.ReaderAt, pos, limit int64) *scanner {
	return &scanner{f: f, pos: pos, limit: limit}
}

// bytesAt returns n bytes at file position p, valid until the next call.
func (s *scanner) bytesAt(p int64, n int64) ([]byte, error) {
	if p+n > s.limit {
		return nil, errTorn
	}
	if p >= s.winPos && p+n <= s.winPos+int64(len(s.win)) {
		return s.win[p-s.winPos : p-s.winPos+n], nil
	}
	size := min(max(n, scanWindow), s.limit-p)
	if int64(cap(s.win)) < size {
		s.win = make([]byte, size)
	}
	s.win = s.win[:size]
	if _, err := s.f.ReadAt(s.win, p); err != nil {
		s.win = s.win[:0]
		if err == io.EOF {
			return nil, fmt.Errorf("%w: segment shorter than expected", ErrCorrupt)
		}
		return nil, err
	}
	s.winPos = p
	return s.win[:n], nil
}

// next returns the header and position of the next batch and moves past
// it. It returns io.EOF at the limit, errTorn when a header or batch runs
// past it, and ErrCorrupt for an impossible header.
func (s *scanner) next() (batchHeader, int64, error) {
	if s.pos >= s.limit {
		return batchHeader{}, 0, io.EOF
	}
	b, err := s.bytesAt(s.pos, batchHeaderSize)
	if err != nil {
		return batchHeader{}, 0, err
	}
	h, err := parseHeader(b)
	if err != nil {
		return batchHeader{}, 0, err
	}
	if s.pos+h.size > s.limit {
		return batchHeader{}, 0, errTorn
	}
	pos := s.pos
	s.pos += h.size
	return h, pos, nil
}

// batch returns the whole batch at pos (as returned by next), valid until
// the next call.
func (s *scanner) batch(pos int64, h *batchHeader) ([]byte, error) {
	return s.bytesAt(pos, h.size)
}
