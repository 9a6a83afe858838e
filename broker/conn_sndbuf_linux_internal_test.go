package broker

import (
	"net"
	"syscall"
	"testing"
)

// sndbuf is an accepted connection's SO_SNDBUF once newConn has set it up
// under cfg (Linux reports twice the value set, its bookkeeping included).
func sndbuf(t *testing.T, cfg Config) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(&Broker{cfg: cfg, ctx: t.Context()}, nc)
	defer c.close()
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var gerr error
	if err := rc.Control(func(fd uintptr) { n, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return n
}

// TestConnSendBuffer: an accepted connection's send buffer is
// socket.send.buffer.bytes (256 KiB by default), and -1 leaves the
// kernel's own (its autotuning's limit, 4 MiB here).
func TestConnSendBuffer(t *testing.T) {
	var cfg Config
	cfg.EnsureDefaults()
	if got := sndbuf(t, cfg); got != 2*256<<10 {
		t.Errorf("default: SO_SNDBUF %d, want %d (twice 256 KiB)", got, 2*256<<10)
	}
	cfg.SocketSendBufferBytes = 100 << 10
	if got := sndbuf(t, cfg); got != 2*100<<10 {
		t.Errorf("100 KiB: SO_SNDBUF %d, want %d", got, 2*100<<10)
	}
	cfg.SocketSendBufferBytes = -1
	if got := sndbuf(t, cfg); got == 2*256<<10 || got == 2*100<<10 {
		t.Errorf("-1: SO_SNDBUF %d, set by the broker rather than left to the kernel", got)
	}
	cfg.SocketSendBufferBytes = -2
	if err := cfg.Validate(); err == nil {
		t.Error("socket.send.buffer.bytes -2 validates")
	}
}
