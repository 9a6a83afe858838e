package broker

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// newRegionWriter picks how c sends file regions: sendfile on a plain
// TCP connection, a copy through buffers on anything else.
func newRegionWriter(c *conn) regionWriter {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			return sendfileWriter{c: c, rc: rc}
		}
	}
	return &copyRegionWriter{w: deadlineWriter{c}}
}

// sendfileWriter sends regions with sendfile(2) at an explicit offset,
// so the file's own offset (shared with the log's descriptor) is never
// used. The socket is non-blocking: on EAGAIN the runtime's poller waits
// for room, within the connection's write deadline.
type sendfileWriter struct {
	c  *conn
	rc syscall.RawConn
}

// writeFrame writes the parts of the frame from memory through w and
// each region from its file, leaving the part after the last region to
// the caller, which flushes it with the responses that follow.
func (s sendfileWriter) writeFrame(w *bufio.Writer, frame []byte, cuts []cut) ([]byte, error) {
	prev := 0
	for _, ct := range cuts {
		if _, err := w.Write(frame[prev:ct.at]); err != nil {
			return nil, err
		}
		// The region goes around w: what w holds must go first.
		if err := w.Flush(); err != nil {
			return nil, err
		}
		s.c.nc.SetWriteDeadline(time.Now().Add(s.c.b.cfg.ConnectionsMaxIdle))
		if err := s.writeRegion(ct.r.File(), ct.r.Pos, ct.r.Len); err != nil {
			return nil, err
		}
		prev = ct.at
	}
	return frame[prev:], nil
}

// maxSendfile bounds one sendfile call (Linux sends at most ~2 GiB).
const maxSendfile = 1 << 30

func (s sendfileWriter) writeRegion(f *os.File, pos, n int64) error {
	frc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	cerr := frc.Control(func(in uintptr) {
		err := s.rc.Write(func(out uintptr) bool {
			for n > 0 {
				m, err := syscall.Sendfile(int(out), int(in), &pos, int(min(n, maxSendfile)))
				if m > 0 {
					n -= int64(m)
				}
				switch {
				case errors.Is(err, syscall.EAGAIN):
					return false // wait until the socket takes more
				case errors.Is(err, syscall.EINTR):
					continue
				case err != nil:
					werr = fmt.Errorf("broker: sendfile: %w", err)
					return true
				case m == 0:
					// The file ends before the region: it was cut
					// under us. The frame cannot be finished.
					werr = fmt.Errorf("broker: sendfile of %s: %w", f.Name(), io.ErrUnexpectedEOF)
					return true
				}
			}
			return true
		})
		if werr == nil {
			werr = err
		}
	})
	if werr == nil {
		werr = cerr
	}
	return werr
}
