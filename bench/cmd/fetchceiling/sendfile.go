package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// sendPieces writes a response whose records lie in files: the framing
// with write, the records with sendfile at their offset, the socket
// corked throughout so that the response leaves in full segments.
func sendPieces(tc *net.TCPConn, pieces []piece) error {
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	cork := func(v int) {
		rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, v) })
	}
	cork(1)
	defer cork(0)
	for _, p := range pieces {
		if _, err := tc.Write(p.head); err != nil {
			return err
		}
		if p.recs.n > 0 {
			if err := sendfile(rc, p.recs.f, p.recs.pos, int64(p.recs.n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// sendfile sends n bytes of f from pos to the socket, waiting for room
// through the runtime's poller.
func sendfile(rc syscall.RawConn, f *os.File, pos, n int64) error {
	var werr error
	err := rc.Write(func(out uintptr) bool {
		for n > 0 {
			m, err := syscall.Sendfile(int(out), int(f.Fd()), &pos, int(n))
			if m > 0 {
				n -= int64(m)
			}
			switch {
			case errors.Is(err, syscall.EAGAIN):
				return false
			case errors.Is(err, syscall.EINTR):
				continue
			case err != nil:
				werr = fmt.Errorf("sendfile: %w", err)
				return true
			case m == 0:
				werr = io.ErrUnexpectedEOF
				return true
			}
		}
		return true
	})
	if werr != nil {
		return werr
	}
	return err
}
