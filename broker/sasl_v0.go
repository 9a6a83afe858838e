package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// SASL after a SaslHandshake v0: the exchange's tokens travel unframed,
// each a 4-byte length and the token's bytes with no request header, and
// the broker answers each the same way (Kafka before 1.0, and what a
// client gets when it sends the handshake at v0). Clients since then send
// v1 and SaslAuthenticate requests, but librdkafka takes a broker's SASL
// support from the SaslHandshake range including v0, so the broker serves
// it. A failed exchange closes the connection: v0 has no way to say why.

// saslMaxToken bounds an unframed token (Kafka's
// sasl.server.max.receive.size).
const saslMaxToken = 512 << 10

// saslRawToken is the broker's answer to an unframed token, written as
// itself: length and bytes. It is a kmsg.Response only so that it passes
// through the connection's response queue.
type saslRawToken struct {
	*kmsg.SASLAuthenticateResponse
	token []byte
}

// readRawToken reads one unframed token of size bytes, runs it through the
// mechanism the handshake chose, and queues the answer. It returns an
// error, closing the connection, when the token is too large or
// authentication fails.
func (c *conn) readRawToken(r *bufio.Reader, size int32) error {
	if size < 0 || size > saslMaxToken {
		return fmt.Errorf("broker: SASL token of %d bytes (at most %d)", size, saslMaxToken)
	}
	c.nc.SetReadDeadline(time.Now().Add(c.b.cfg.RequestReadTimeout))
	token := make([]byte, size)
	if _, err := io.ReadFull(r, token); err != nil {
		return err
	}
	out, user, err := c.sec.mechanism.step(token)
	if err != nil {
		c.b.logger.Info("sasl authentication failed", "remote", c.nc.RemoteAddr().String(), "listener", c.sec.l.spec.name, "err", err)
		return fmt.Errorf("broker: SASL authentication (unframed) failed: %w", err)
	}
	if user != "" {
		c.sec.mechanism = nil
		c.sec.rawTokens = false
		c.sec.authenticated = true
		c.setPrincipal("User:" + user)
	}
	req := &request{key: 36, received: time.Now()}
	resp := &saslRawToken{SASLAuthenticateResponse: kmsg.NewPtrSASLAuthenticateResponse(), token: out}
	select {
	case c.queue <- inflight{req: req, fin: func(context.Context) kmsg.Response { return resp }}:
		return nil
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}

// appendRawToken frames an unframed token's answer.
func appendRawToken(dst []byte, t *saslRawToken) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(t.token)))
	return append(dst, t.token...)
}
