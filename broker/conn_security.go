package broker

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// connSecurity is a connection's listener and authentication state. Only
// the connection's reader goroutine touches it, after the TLS handshake;
// the SASL handlers run there too, in request order.
type connSecurity struct {
	l *listener // nil for a connection made outside a listener
	// principal is who the connection is: from the client certificate
	// on SSL, from SASL on SASL listeners, else User:ANONYMOUS.
	principal string
	// host is the client's IP address, as ACL bindings name it.
	host string
	// shown is principal for other goroutines (tests, logs of the
	// broker's connections).
	shown atomic.Pointer[string]
	// authDeadline is when a SASL connection must have authenticated.
	authDeadline time.Time
	// authenticated is set by a successful SaslAuthenticate; a SASL
	// connection serves nothing but ApiVersions and the SASL requests
	// before it.
	authenticated bool
	// mechanism is the exchange a SaslHandshake began, nil when none is
	// under way.
	mechanism saslServer
	// rawTokens is set by a SaslHandshake v0: the exchange's tokens come
	// unframed until it ends (sasl_v0.go).
	rawTokens bool
	// sessionEnd is when the session ends (KIP-368), zero for never,
	// by the broker's clock.
	sessionEnd time.Time
}

// setListener records the listener a connection came in on.
func (c *conn) setListener(l *listener) {
	c.sec.l = l
	c.sec.host = remoteHost(c.raw.RemoteAddr())
	c.setPrincipal(anonymous)
	if l.spec.sasl() {
		c.sec.authDeadline = time.Now().Add(c.b.cfg.Security.SASL.AuthenticationTimeout)
	}
}

func (c *conn) saslListener() bool { return c.sec.l != nil && c.sec.l.spec.sasl() }

// idleDeadline is the read deadline between frames: connections.max.idle.ms,
// or the authentication deadline while a SASL connection has not
// authenticated.
func (c *conn) idleDeadline() time.Time {
	d := time.Now().Add(c.b.cfg.ConnectionsMaxIdle)
	if c.saslListener() && !c.sec.authenticated && c.sec.authDeadline.Before(d) {
		return c.sec.authDeadline
	}
	return d
}

// saslKey reports whether key is a request a connection may send before
// it authenticates: ApiVersions, SaslHandshake, SaslAuthenticate.
func saslKey(key int16) bool { return key == 18 || key == 17 || key == 36 }

// admit refuses a request a SASL connection may not send yet, which closes
// the connection, as Kafka does: before authentication anything but the
// SASL requests and ApiVersions, and after the session's end (KIP-368)
// anything but a re-authentication.
func (c *conn) admit(req *request) error {
	if !c.saslListener() || saslKey(req.key) {
		return nil
	}
	if !c.sec.authenticated {
		return fmt.Errorf("broker: %s before SASL authentication on listener %s", kmsg.NameForKey(req.key), c.sec.l.spec.name)
	}
	if !c.sec.sessionEnd.IsZero() && !c.b.cfg.Now().Before(c.sec.sessionEnd) {
		return fmt.Errorf("broker: %s after the SASL session of %s ended (connections.max.reauth.ms)", kmsg.NameForKey(req.key), c.sec.principal)
	}
	return nil
}

func (c *conn) setPrincipal(p string) {
	c.sec.principal = p
	c.sec.shown.Store(&p)
}
