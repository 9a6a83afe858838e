package broker

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// sndbuf is an accepted connection's SO_SNDBUF once newConn has set it up
// under cfg (Linux reports twice the value set, its bookkeeping included).
func sndbuf(t *testing.T, cfg Config) int {
	t.Helper()
	_, nc := tcpPair(t)
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

// wantSndbuf is what Linux reports for a send buffer set to n: n capped
// at net.core.wmem_max, doubled for its bookkeeping.
func wantSndbuf(t *testing.T, n int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/core/wmem_max")
	if err != nil {
		t.Skipf("wmem_max unknown: %v", err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return 2 * min(n, limit)
}

// TestConnSendBuffer: an accepted connection's send buffer is
// socket.send.buffer.bytes (256 KiB by default), and -1 leaves the
// kernel's own (its autotuning's limit, 4 MiB here).
func TestConnSendBuffer(t *testing.T) {
	var cfg Config
	cfg.EnsureDefaults()
	if got, want := sndbuf(t, cfg), wantSndbuf(t, 256<<10); got != want {
		t.Errorf("default: SO_SNDBUF %d, want %d (256 KiB, doubled)", got, want)
	}
	cfg.SocketSendBufferBytes = 100 << 10
	if got, want := sndbuf(t, cfg), wantSndbuf(t, 100<<10); got != want {
		t.Errorf("100 KiB: SO_SNDBUF %d, want %d", got, want)
	}
	cfg.SocketSendBufferBytes = -1
	if got := sndbuf(t, cfg); got == wantSndbuf(t, 256<<10) || got == wantSndbuf(t, 100<<10) {
		t.Errorf("-1: SO_SNDBUF %d, set by the broker rather than left to the kernel", got)
	}
	cfg.SocketSendBufferBytes = -2
	if err := cfg.Validate(); err == nil {
		t.Error("socket.send.buffer.bytes -2 validates")
	}
}
