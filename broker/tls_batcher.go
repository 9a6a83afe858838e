package broker

import (
	"net"
	"sync"
)

// tlsBatcher sits between a TLS connection and its TCP connection and
// gathers the records crypto/tls writes while the connection's writer
// holds it, so that a response of many records goes out in a few large
// writes rather than one write per record (crypto/tls writes each record
// of up to 16 KiB with its own call). Outside a hold, writes pass
// straight through: the handshake, alerts, and the rare record the reader
// goroutine writes (a TLS 1.3 KeyUpdate answer) when no response is being
// written.
//
// Records written by another goroutine during a hold join the batch,
// which is in order: crypto/tls writes records one at a time under its own
// lock. A batch write that fails is reported by release; the writer then
// closes the connection.
type tlsBatcher struct {
	net.Conn

	mu sync.Mutex // guards the following
	// held is set between hold and release.
	held bool
	// buf gathers the records of a hold; from tlsBatches, nil when not
	// held.
	buf *[]byte
}

// tlsBatchSize is the batch buffer: a copyChunk of plaintext and the
// records' headers and tags around it (22 bytes per record of TLS 1.3,
// 29 of TLS 1.2), so that a chunk's records go out in one write.
const tlsBatchSize = copyChunk + copyChunk/16

// tlsBatches are the batch buffers of the connections writing at the
// moment, none per idle connection.
var tlsBatches = sync.Pool{New: func() any { b := make([]byte, 0, tlsBatchSize); return &b }}

// hold starts gathering the records written from now on.
func (t *tlsBatcher) hold() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held {
		return
	}
	t.held = true
	t.buf = tlsBatches.Get().(*[]byte)
}

// release writes the records gathered since hold and lets writes pass
// straight through again.
func (t *tlsBatcher) release() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.held {
		return nil
	}
	err := t.flushLocked()
	t.held = false
	*t.buf = (*t.buf)[:0]
	tlsBatches.Put(t.buf)
	t.buf = nil
	return err
}

// flushLocked writes what the batch holds.
// REQUIRES: t.mu held, t.held.
func (t *tlsBatcher) flushLocked() error {
	b := *t.buf
	*t.buf = b[:0]
	if len(b) == 0 {
		return nil
	}
	_, err := t.Conn.Write(b)
	return err
}

// Write gathers p while held, writing the batch first when p does not
// fit; otherwise, or when p is larger than the batch, writes it through.
func (t *tlsBatcher) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.held {
		return t.Conn.Write(p)
	}
	if len(*t.buf)+len(p) > cap(*t.buf) {
		if err := t.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(*t.buf) {
			return t.Conn.Write(p)
		}
	}
	*t.buf = append(*t.buf, p...)
	return len(p), nil
}
