package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// newRegionWriter picks how c sends file regions: sendfile on a plain
// TCP connection, a copy through a buffer on anything else.
func newRegionWriter(nc net.Conn) regionWriter {
	if tc, ok := nc.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			return sendfileWriter{rc}
		}
	}
	return &copyRegionWriter{w: nc}
}

// sendfileWriter sends regions with sendfile(2) at an explicit offset,
// so the file's own offset (shared with the log's descriptor) is never
// used. The socket is non-blocking: on EAGAIN the runtime's poller waits
// for room, within the connection's write deadline.
type sendfileWriter struct{ rc syscall.RawConn }

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
