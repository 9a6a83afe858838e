package meta

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// The controller listener over TLS. With Config.ServerTLS and
// Config.ClientTLS set, every connection between controllers, Raft and
// forwarded calls alike, is mutual TLS: the accepting node completes the
// handshake before it reads the connection's first byte, so a peer
// without a certificate its CA pool accepts is refused before it can say
// anything to Raft or to the controller; the dialling node verifies the
// accepting node's certificate against the same pool, and the host it
// dialled against the certificate's names.

// controllerHandshakeTimeout bounds a TLS handshake on the controller
// listener, so a peer that stalls in it holds nothing for long.
const controllerHandshakeTimeout = 10 * time.Second

// tlsDial returns dial with a TLS client handshake on each connection it
// opens; config gives the configuration for the host dialled.
func tlsDial(dial func(ctx context.Context, network, addr string) (net.Conn, error), config func(serverName string) *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("meta: controller address %q: %w", addr, err)
		}
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(c, config(host))
		hctx, cancel := context.WithTimeout(ctx, controllerHandshakeTimeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("meta: TLS handshake with controller %s: %w", addr, err)
		}
		return tc, nil
	}
}

// secure completes the server side of the TLS handshake on an accepted
// controller connection when the listener is TLS; otherwise it returns c.
// A handshake that fails is logged, since it is a peer (or anyone) that
// the cluster refused.
func (m *muxListener) secure(c net.Conn) (net.Conn, bool) {
	if m.tls == nil {
		return c, true
	}
	tc := tls.Server(c, m.tls)
	tc.SetDeadline(time.Now().Add(controllerHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		if m.refused != nil {
			m.refused(c.RemoteAddr(), err)
		}
		c.Close()
		return nil, false
	}
	tc.SetDeadline(time.Time{})
	return tc, true
}
