package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxSpareFrame bounds the response buffer a connection's writer keeps
// for reuse, so one huge response does not pin its memory for the
// connection's life. (Produce frames are pooled: frame_pool.go.)
const maxSpareFrame = 4 << 20

// connReadBuffer and connWriteBuffer size a client connection's buffered
// reader and writer, which it holds for its whole life, idle or not
// (TestIdleConnectionMemory). They batch small requests and responses
// into one system call; a frame or response larger than the buffer is
// read into its own buffer, or written, directly, so a larger buffer
// would only add a copy. At 64 KiB each, 200 producers' connections held
// 50 MiB between them.
const (
	connReadBuffer  = 16 << 10
	connWriteBuffer = 16 << 10
)

// decodeAmplification bounds how many bytes of memory a request other
// than Produce holds per byte of its frame, decoded and answered: an
// array element takes 3 bytes on the wire at least (OffsetFetch's topics:
// an empty compact string, a null compact array, no tags) and a 48-byte
// struct once decoded, then as much again in the response. Such requests
// are charged their frame size times this against queued.max.request.bytes,
// so a frame of millions of tiny entries is paid for before it is
// decoded. Produce frames are charged their size: their records are the
// frame's bytes.
const decodeAmplification = 32

// request is one decoded request with its header.
type request struct {
	key      int16
	version  int16
	corr     int32
	clientID string
	flexible bool // header v2 (tagged fields) on the request, v1 on the response
	kreq     kmsg.Request
	received time.Time
	// For a Produce only (slow_produce.go): how long its reader waited
	// for the request budget before reading it, and when its handler
	// returned (its batches appended).
	budgetWait time.Duration
	handled    time.Time
}

// finisher completes a request in the writer goroutine and returns its
// response, or nil when no response is sent (Produce with acks=0). It may
// block (waiting for an fsync, or for data in a long poll) but must return
// promptly once ctx is done.
type finisher func(ctx context.Context) kmsg.Response

// errCloseConn, returned by a handler, closes the connection after the
// responses before it are written (Kafka's answer to a failed acks=0
// produce, so the client refreshes its metadata).
var errCloseConn = errors.New("broker: close connection")

type inflight struct {
	req *request
	fin finisher
	// charge is what the request holds of the broker's byte budget,
	// given back once its response is written.
	charge int64
}

type conn struct {
	b *Broker
	// id tells the broker's connections apart (read_marks.go).
	id uint64
	// raw is the accepted connection, closed by close; nc is what the
	// reader and writer use: raw, or a TLS connection over it.
	raw    net.Conn
	nc     net.Conn
	sec    connSecurity // conn_security.go
	ctx    context.Context
	cancel context.CancelFunc
	// queue holds requests read but not yet answered; its capacity is
	// queued.max.requests, so a client that pipelines requests and never
	// reads the responses stops being read.
	queue chan inflight
	// respCharge is what the response being finished holds of the
	// broker's fetch budget (queued.max.response.bytes), set by a Fetch's
	// finisher and given back once the response is written. Only the
	// writer goroutine touches it.
	respCharge int64
	// regions sends the file regions of zero-copy Fetch responses
	// (fetch_zerocopy.go); nil turns zero-copy off.
	regions regionWriter
	// mutedUntil is when the connection's quota throttle ends, in Unix
	// nanoseconds of the broker's clock (quota.go): the reader reads no
	// request before it. Set by the reader and the writer.
	mutedUntil atomic.Int64
	// slowProduceLogged is when the writer last logged a slow Produce
	// (slow_produce.go).
	slowProduceLogged time.Time
	// out is the writer goroutine's buffered writer, set when it starts;
	// only that goroutine, and the finishers it runs, touch it
	// (flushResponses).
	out *bufio.Writer
	// gather is the writer goroutine's vectored write of a fetch response
	// served from memory (writeZeroCopy), kept for its slice's capacity.
	gather gather
}

func newConn(b *Broker, nc net.Conn) *conn {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		if n := b.cfg.SocketSendBufferBytes; n > 0 {
			// socket.send.buffer.bytes. An error leaves the kernel's
			// buffer, which works, only at more cost.
			_ = tc.SetWriteBuffer(int(n))
		}
	}
	ctx, cancel := context.WithCancel(b.ctx)
	return &conn{b: b, id: b.connSeq.Add(1), raw: nc, nc: nc, ctx: ctx, cancel: cancel, queue: make(chan inflight, b.cfg.QueuedMaxRequests)}
}

func (c *conn) close() {
	c.cancel()
	c.raw.Close()
}

// serve runs the connection until the client goes away, a frame is
// malformed, or the broker closes. It owns the writer goroutine.
func (c *conn) serve() {
	c.b.metrics.connections.Inc()
	defer c.b.metrics.connections.Dec()
	if err := c.wrapTLS(); err != nil {
		c.close()
		c.b.logger.Debug("connection refused", "remote", c.raw.RemoteAddr().String(), "err", err)
		return
	}
	// Zero-copy sends file bytes straight to the socket: only on the
	// raw TCP connection. On TLS, c.nc is the TLS conn, and regions are
	// copied through it (encrypted) instead.
	c.regions = newRegionWriter(c.nc)

	done := make(chan struct{})
	go func() { defer close(done); c.writeLoop() }()
	err := c.readLoop()
	if !errors.Is(err, errCloseConn) {
		// The client is gone (or sent what cannot be answered): end
		// the waits of its requests in flight, such as long polls,
		// rather than hold the connection until they expire.
		c.cancel()
	}
	close(c.queue)
	<-done
	c.close()
	if err != nil && !errors.Is(err, io.EOF) && c.ctx.Err() == nil {
		c.b.logger.Debug("connection closed", "remote", c.nc.RemoteAddr().String(), "err", err)
	}
}

func (c *conn) readLoop() error {
	r := bufio.NewReaderSize(c.nc, connReadBuffer)
	cfg := &c.b.cfg
	var sizeBuf [4]byte
	for {
		// Between frames the client may stay quiet for
		// connections.max.idle.ms; once a frame starts it has the
		// request read timeout to finish it.
		if err := c.waitMuted(); err != nil {
			return err
		}
		c.nc.SetReadDeadline(c.idleDeadline())
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if c.sec.rawTokens {
			// After a SaslHandshake v0 (sasl_v0.go).
			if err := c.readRawToken(r, size); err != nil {
				return err
			}
			continue
		}
		if size < 8 || size > cfg.SocketRequestMaxBytes {
			return fmt.Errorf("broker: request size %d out of bounds (socket.request.max.bytes %d)", size, cfg.SocketRequestMaxBytes)
		}
		c.nc.SetReadDeadline(time.Now().Add(cfg.RequestReadTimeout))
		charge, err := c.chargeFor(r, size)
		if err != nil {
			return err
		}
		// One acquire per frame, never adding to a charge held: a reader
		// holding part of the budget while it waits for more could
		// deadlock with another doing the same.
		budgetStart := produceClock(r)
		if err := c.b.requestBytes.acquire(c.ctx, charge); err != nil {
			return err
		}
		buf, err := c.readFrame(r, size)
		if err != nil {
			c.b.requestBytes.release(charge)
			return err
		}
		req, err := c.decode(buf)
		if err != nil {
			c.b.requestBytes.release(charge)
			var uv *unsupportedVersion
			if errors.As(err, &uv) {
				// KIP-511: answer an ApiVersions the broker does not
				// know with a v0 response listing what it does.
				c.queue <- inflight{req: uv.req, fin: func(context.Context) kmsg.Response { return apiVersionsUnsupported() }}
				continue
			}
			c.b.metrics.badRequests.Inc()
			return err
		}
		if err := c.admit(req); err != nil {
			c.b.requestBytes.release(charge)
			return err
		}
		c.b.metrics.bytesInRequests.Add(float64(size + 4))
		fin, err := c.handleMetered(req, size+4, (*conn).handle)
		if req.key == 0 {
			req.budgetWait = req.received.Sub(budgetStart) // includes reading the frame
			req.handled = time.Now()
			// The records are in the log: the frame is free. Decoded
			// requests alias their frame, so a frame may only be
			// reused once nothing holds on to it: true of Produce,
			// whose records are appended (copied to the log) before
			// its handler returns, and Produce is where the bytes are.
			c.b.requestBytes.release(charge)
			charge = 0
			putFrame(buf)
		}
		if fin == nil {
			c.b.requestBytes.release(charge)
		} else {
			select {
			case c.queue <- inflight{req: req, fin: fin, charge: charge}:
			case <-c.ctx.Done():
				c.b.requestBytes.release(charge)
				return c.ctx.Err()
			}
		}
		if err != nil {
			return err
		}
	}
}

// readFrame reads a frame of size bytes, a Produce into a pooled buffer
// (frame_pool.go), within the request read timeout (counted from now:
// waiting for the budget is not the client's delay).
func (c *conn) readFrame(r *bufio.Reader, size int32) ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(c.b.cfg.RequestReadTimeout))
	var buf []byte
	if head, _ := r.Peek(2); len(head) == 2 && binary.BigEndian.Uint16(head) == 0 {
		buf = getFrame(int(size))
	} else {
		buf = make([]byte, size)
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("broker: reading a %d-byte request: %w", size, err)
	}
	return buf, nil
}

// chargeFor is what a frame of size bytes is charged against
// queued.max.request.bytes: its size for Produce, whose records are the
// frame's bytes, and its size times decodeAmplification for every other
// API, read from the frame's first two bytes. A frame that could never fit
// the budget closes the connection.
func (c *conn) chargeFor(r *bufio.Reader, size int32) (int64, error) {
	head, err := r.Peek(2)
	if err != nil {
		return 0, fmt.Errorf("broker: reading a request header: %w", err)
	}
	key := int16(binary.BigEndian.Uint16(head))
	charge := int64(size)
	if key != 0 {
		charge *= decodeAmplification
	}
	if total := c.b.requestBytes.total; charge > total {
		return 0, fmt.Errorf("broker: %s request of %d bytes may hold %d bytes decoded, more than queued.max.request.bytes %d",
			kmsg.NameForKey(key), size, charge, total)
	}
	return charge, nil
}

// unsupportedVersion is an ApiVersions request at a version beyond ours.
type unsupportedVersion struct{ req *request }

func (e *unsupportedVersion) Error() string {
	return fmt.Sprintf("broker: unsupported ApiVersions v%d", e.req.version)
}

// decode parses a request header and body. Errors mean the frame cannot be
// answered and the connection closes.
func (c *conn) decode(buf []byte) (*request, error) {
	req := &request{
		key:      int16(binary.BigEndian.Uint16(buf[0:])),
		version:  int16(binary.BigEndian.Uint16(buf[2:])),
		corr:     int32(binary.BigEndian.Uint32(buf[4:])),
		received: time.Now(),
	}
	h, ok := handlers[req.key]
	if !ok {
		return nil, fmt.Errorf("broker: unknown api key %d", req.key)
	}
	if req.version < h.min || req.version > h.max {
		if req.key == 18 && req.version > h.max {
			return nil, &unsupportedVersion{req: req}
		}
		return nil, fmt.Errorf("broker: %s v%d unsupported (serving v%d-v%d)", kmsg.NameForKey(req.key), req.version, h.min, h.max)
	}
	kreq := kmsg.RequestForKey(req.key)
	kreq.SetVersion(req.version)
	req.kreq = kreq
	req.flexible = kreq.IsFlexible()

	body := buf[8:]
	// Client id: a nullable int16-length string, in header v1 and v2.
	if len(body) < 2 {
		return nil, errors.New("broker: truncated request header")
	}
	n := int16(binary.BigEndian.Uint16(body))
	body = body[2:]
	if n > 0 {
		if int(n) > len(body) {
			return nil, errors.New("broker: truncated client id")
		}
		req.clientID = string(body[:n])
		body = body[n:]
	}
	if req.flexible {
		rest, err := skipTags(body)
		if err != nil {
			return nil, err
		}
		body = rest
	}
	if err := kreq.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("broker: decode %s v%d: %w", kmsg.NameForKey(req.key), req.version, err)
	}
	return req, nil
}

// skipTags skips a tagged-field section (KIP-482): a count, then for each
// field a tag and a size-prefixed value.
func skipTags(b []byte) ([]byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 {
		return nil, errors.New("broker: bad tagged fields")
	}
	b = b[l:]
	for i := uint64(0); i < n; i++ {
		_, l := binary.Uvarint(b)
		if l <= 0 {
			return nil, errors.New("broker: bad tag")
		}
		b = b[l:]
		size, l := binary.Uvarint(b)
		if l <= 0 || size > uint64(len(b)-l) {
			return nil, errors.New("broker: bad tag size")
		}
		b = b[l+int(size):]
	}
	return b, nil
}

// handle runs a request's synchronous part. A panic in a handler is a bug;
// it closes this connection only and is logged with its stack.
func (c *conn) handle(req *request) (fin finisher, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.b.logger.Error("handler panic", "api", kmsg.NameForKey(req.key), "panic", r, "stack", string(debug.Stack()))
			fin, err = nil, fmt.Errorf("broker: handler panic: %v", r)
		}
	}()
	return handlers[req.key].fn(c, req)
}

// handleMetered runs handle for req (c.handle, but for benchmarks of what
// surrounds it) and records the request against the client quotas
// (quota.go). Without quotas, the default, the handler is not even timed:
// reading the clock costs more than the rest of the check on this path.
func (c *conn) handleMetered(req *request, frameSize int32, handle func(*conn, *request) (finisher, error)) (finisher, error) {
	if len(c.b.meta.Quotas()) == 0 || quotaExempt(req.key) {
		return handle(c, req)
	}
	start := time.Now()
	fin, err := handle(c, req)
	return c.applyQuotas(req, frameSize, time.Since(start), fin), err
}

func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(deadlineWriter{c}, connWriteBuffer)
	c.out = w
	var buf []byte
	for item := range c.queue {
		var finStart, finEnd time.Time
		if item.req.key == 0 {
			finStart = time.Now()
		} else {
			// Other finishers may block too (a Fetch's long poll, a
			// JoinGroup's rebalance) and say nothing before they do:
			// the responses before them go out first. (A Produce
			// flushes them itself, only when it has to wait.)
			c.flushResponses()
		}
		resp := c.finish(item)
		if item.req.key == 0 {
			finEnd = time.Now()
		}
		if resp == nil {
			c.releaseResponse(item)
			continue
		}
		if z, ok := resp.(*zeroCopyFetch); ok {
			buf = c.writeZeroCopy(w, item.req, z, buf)
			c.releaseResponse(item)
			continue
		}
		if t, ok := resp.(*saslRawToken); ok {
			buf = appendRawToken(buf[:0], t)
		} else {
			buf = appendResponse(buf[:0], item.req, resp)
		}
		c.b.metrics.observeRequest(item.req.key, time.Since(item.req.received))
		if c.ctx.Err() == nil {
			c.write(w, buf)
		}
		if item.req.key == 0 {
			now := time.Now()
			t := timeProduce(item.req, finStart, finEnd, now)
			c.b.metrics.producePhases.observe(t)
			c.checkSlowProduce(t, now)
		}
		c.releaseResponse(item)
		if cap(buf) > maxSpareFrame {
			buf = nil
		}
	}
}

// releaseResponse gives back what a request and its response held of the
// broker's budgets, once the response is written or dropped.
func (c *conn) releaseResponse(item inflight) {
	c.b.requestBytes.release(item.charge)
	c.b.fetchBytes.release(c.respCharge)
	c.respCharge = 0
}

// write sends one framed response, flushing when nothing else is ready so
// that pipelined responses share a write. A failed write closes the
// connection; the loop then only drains.
func (c *conn) write(w *bufio.Writer, frame []byte) {
	if _, err := w.Write(frame); err != nil {
		c.close()
		return
	}
	if len(c.queue) == 0 {
		if err := w.Flush(); err != nil {
			c.close()
		}
	}
}

// flushResponses sends the responses buffered so far. The writer holds
// a response back while more requests are queued, so that pipelined
// responses share a write; before a finisher that may block it calls
// this (a Produce's finisher calls it itself, only when it must wait for
// its fsync), or the responses before it would wait for it too: a
// producer, which pipelines a few requests at most, would stop sending
// until the slowest of them is acknowledged. Only the writer goroutine (a
// finisher it runs) may call it.
func (c *conn) flushResponses() {
	if c.out == nil || c.out.Buffered() == 0 || c.ctx.Err() != nil {
		return
	}
	if err := c.out.Flush(); err != nil {
		c.close()
	}
}

// deadlineWriter writes to the connection with connections.max.idle.ms
// to make progress: a client that stops reading its responses is as idle
// as one that stops sending.
type deadlineWriter struct{ c *conn }

func (d deadlineWriter) Write(p []byte) (int, error) {
	d.c.nc.SetWriteDeadline(time.Now().Add(d.c.b.cfg.ConnectionsMaxIdle))
	return d.c.nc.Write(p)
}

func (c *conn) finish(item inflight) (resp kmsg.Response) {
	defer func() {
		if r := recover(); r != nil {
			c.b.logger.Error("finisher panic", "api", kmsg.NameForKey(item.req.key), "panic", r, "stack", string(debug.Stack()))
			resp = nil
			c.close()
		}
	}()
	return item.fin(c.ctx)
}

// appendResponse frames a response: size, correlation id, the response
// header's tagged fields when flexible (never for ApiVersions, whose
// response header is always v0 so a client can read it before knowing the
// broker's versions), then the body.
func appendResponse(dst []byte, req *request, resp kmsg.Response) []byte {
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(req.corr))
	if req.flexible && req.key != 18 {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst, uint32(len(dst)-4))
	return dst
}
