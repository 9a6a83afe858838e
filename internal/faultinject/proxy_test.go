package faultinject_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/faultinject"
)

// echoServer answers every byte it reads with the same byte and counts
// what it received.
type echoServer struct {
	ln       net.Listener
	wg       sync.WaitGroup
	received atomic.Int64

	mu    sync.Mutex // guards conns
	conns []net.Conn
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					s.received.Add(int64(n))
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func newProxy(t *testing.T, target string) *faultinject.Proxy {
	t.Helper()
	p, err := faultinject.NewProxy("127.0.0.1:0", target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads the echo back within 10 s.
func roundTrip(c net.Conn, msg []byte) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo differs: " + string(got))
	}
	return nil
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closedByPeer reports whether c's next read ends with EOF or a reset
// (not a timeout) within 10 s.
func closedByPeer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// silentFor reports whether nothing arrives on c for d.
func silentFor(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestProxyForwards(t *testing.T) {
	echo := startEcho(t)
	p := newProxy(t, echo.ln.Addr().String())
	c := dial(t, p.Addr())
	big := bytes.Repeat([]byte("0123456789"), 100_000) // many chunks each way
	if err := roundTrip(c, big); err != nil {
		t.Fatal(err)
	}
	if got := echo.received.Load(); got != int64(len(big)) {
		t.Fatalf("server received %d bytes, want %d", got, len(big))
	}
}

func TestProxyCutAndHeal(t *testing.T) {
	echo := startEcho(t)
	p := newProxy(t, echo.ln.Addr().String())
	c := dial(t, p.Addr())
	if err := roundTrip(c, []byte("before")); err != nil {
		t.Fatal(err)
	}

	p.Cut()
	if !closedByPeer(c) {
		t.Fatal("an open connection survived Cut")
	}
	refused := dial(t, p.Addr()) // the proxy accepts, then closes at once
	if !closedByPeer(refused) {
		t.Fatal("a new connection was accepted while cut")
	}
	waitFor(t, "no links while cut", func() bool { return p.Conns() == 0 })

	p.Heal()
	if err := roundTrip(dial(t, p.Addr()), []byte("after")); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
}

func TestProxyDelay(t *testing.T) {
	echo := startEcho(t)
	p := newProxy(t, echo.ln.Addr().String())
	c := dial(t, p.Addr())
	const up, down = 150 * time.Millisecond, 100 * time.Millisecond
	p.Delay(faultinject.Upstream, up)
	p.Delay(faultinject.Downstream, down)
	start := time.Now()
	if err := roundTrip(c, []byte("slow")); err != nil {
		t.Fatal(err)
	}
	// Only a lower bound: a busy machine may add any amount on top.
	if took := time.Since(start); took < up+down {
		t.Fatalf("round trip took %v, want at least %v", took, up+down)
	}

	p.Heal()
	start = time.Now()
	if err := roundTrip(c, []byte("fast")); err != nil {
		t.Fatal(err)
	}
	t.Logf("healed round trip: %v", time.Since(start))
}

func TestProxyDropUpstream(t *testing.T) {
	echo := startEcho(t)
	p := newProxy(t, echo.ln.Addr().String())
	c := dial(t, p.Addr())
	if err := roundTrip(c, []byte("x")); err != nil {
		t.Fatal(err)
	}

	p.Drop(faultinject.Upstream)
	if _, err := c.Write([]byte("lost")); err != nil {
		t.Fatalf("write while dropping upstream: %v (the connection must stay open)", err)
	}
	waitFor(t, "the request to be dropped", func() bool { return p.Dropped(faultinject.Upstream) == 4 })
	if !silentFor(c, 300*time.Millisecond) {
		t.Fatal("got an answer while upstream bytes are dropped")
	}
	if got := echo.received.Load(); got != 1 {
		t.Fatalf("server received %d bytes, want only the first 1", got)
	}
	if p.Conns() != 1 {
		t.Fatalf("open links = %d, want 1: Drop keeps connections", p.Conns())
	}

	// The connection lost bytes: Heal closes it; a new one works.
	p.Heal()
	if !closedByPeer(c) {
		t.Fatal("a connection that lost bytes survived Heal")
	}
	if err := roundTrip(dial(t, p.Addr()), []byte("again")); err != nil {
		t.Fatal(err)
	}
}

func TestProxyDropDownstream(t *testing.T) {
	echo := startEcho(t)
	p := newProxy(t, echo.ln.Addr().String())
	c := dial(t, p.Addr())
	if err := roundTrip(c, []byte("x")); err != nil {
		t.Fatal(err)
	}

	p.Drop(faultinject.Downstream)
	if _, err := c.Write([]byte("heard")); err != nil {
		t.Fatal(err)
	}
	// The server hears the request; its answer is dropped.
	waitFor(t, "the server to receive", func() bool { return echo.received.Load() == 6 })
	waitFor(t, "the answer to be dropped", func() bool { return p.Dropped(faultinject.Downstream) == 5 })
	if !silentFor(c, 300*time.Millisecond) {
		t.Fatal("got an answer while downstream bytes are dropped")
	}
	p.Heal()
	if !closedByPeer(c) {
		t.Fatal("a connection that lost bytes survived Heal")
	}
}

func TestProxyCloseEndsLinks(t *testing.T) {
	echo := startEcho(t)
	p, err := faultinject.NewProxy("127.0.0.1:0", echo.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	if err := roundTrip(c, []byte("x")); err != nil {
		t.Fatal(err)
	}
	p.Delay(faultinject.Downstream, time.Hour) // a writer waiting on its timer
	if _, err := c.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server to receive", func() bool { return echo.received.Load() == 2 })
	if err := p.Close(); err != nil { // returns only once every goroutine ended
		t.Fatal(err)
	}
	if !closedByPeer(c) {
		t.Fatal("connection open after Close")
	}
	if err := p.Close(); !errors.Is(err, faultinject.ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
}

func TestProxyUnreachableTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close() // nothing listens there now
	p := newProxy(t, target)
	if !closedByPeer(dial(t, p.Addr())) {
		t.Fatal("connection to an unreachable target stayed open")
	}
}

// A real Kafka client reaches a real broker through the proxy, and sees
// the faults: a cut fails its requests, a heal lets it carry on.
func TestProxyKafkaClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	p := newProxy(t, b.Addr())

	// The broker advertises its own address; the dialer keeps every
	// connection on the proxy.
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(p.Addr()),
		kgo.Dialer(faultinject.RouteDialer(map[string]string{b.Addr(): p.Addr()})),
		// An idempotent producer keeps a record that may have been
		// written until it learns its fate; this one gives up when the
		// produce's context ends.
		kgo.DisableIdempotentWrite(),
		// Reconnect soon after the heal rather than after the default
		// backoff's growth during the cut.
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(50*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "through"); err != nil {
		t.Fatal(err)
	}
	produce := func(v string, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Topic: "through", Value: []byte(v)}).FirstErr()
	}
	if err := produce("one", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if p.Conns() == 0 {
		t.Fatal("the client bypassed the proxy")
	}

	p.Cut()
	err = produce("cut", 2*time.Second)
	if err == nil {
		t.Fatal("produce succeeded through a cut link")
	}
	t.Logf("produce through a cut link: %v", err)

	p.Heal()
	if err := produce("two", 30*time.Second); err != nil {
		t.Fatalf("produce after heal: %v", err)
	}
	cons, err := kgo.NewClient(
		kgo.SeedBrokers(p.Addr()),
		kgo.Dialer(faultinject.RouteDialer(map[string]string{b.Addr(): p.Addr()})),
		kgo.ConsumeTopics("through"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < 2 && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Fatalf("consumed %q, want [one two]", got)
	}
}
