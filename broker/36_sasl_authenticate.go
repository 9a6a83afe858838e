package broker

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslAuthenticate v0-v2 carries the SASL exchange that a SaslHandshake
// began: PLAIN in one round, SCRAM in two. A failure is answered
// SASL_AUTHENTICATION_FAILED with the reason, and the connection closes;
// a SaslAuthenticate without a handshake before it is ILLEGAL_SASL_STATE.
// From v1 a successful response carries the session's lifetime
// (connections.max.reauth.ms, KIP-368); a re-authentication must be by the
// same user.

func init() { register(36, 0, 2, handleSaslAuthenticate) }

func handleSaslAuthenticate(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.SASLAuthenticateRequest)
	resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	fail := func(code int16, msg string) (finisher, error) {
		resp.ErrorCode = code
		resp.ErrorMessage = &msg
		c.sec.mechanism = nil
		return finishThenClose(resp)
	}
	if !c.saslListener() || c.sec.mechanism == nil {
		return fail(kerr.IllegalSaslState.Code, "SaslAuthenticate without a SaslHandshake before it")
	}
	out, user, err := c.sec.mechanism.step(r.SASLAuthBytes)
	if err != nil {
		c.b.logger.Info("sasl authentication failed", "remote", c.nc.RemoteAddr().String(), "listener", c.sec.l.spec.name, "err", err)
		msg := err.Error()
		if !errors.Is(err, errSASLFailed) {
			msg = "authentication failed"
		}
		return fail(kerr.SaslAuthenticationFailed.Code, msg)
	}
	resp.SASLAuthBytes = out
	if user == "" {
		return respond(resp) // the exchange goes on
	}
	principal := "User:" + user
	if c.sec.authenticated && principal != c.sec.principal {
		return fail(kerr.SaslAuthenticationFailed.Code, "re-authentication as "+principal+", not "+c.sec.principal)
	}
	var end time.Time // zero: the session does not expire
	now := c.b.cfg.Now()
	if d := c.b.cfg.Security.SASL.ConnectionsMaxReauth; d > 0 {
		end = now.Add(d)
	}
	if e, ok := c.sec.mechanism.(expiringSession); ok {
		// The credential's own end, earlier than the reauth interval.
		if exp := e.sessionExpiry(); end.IsZero() || exp.Before(end) {
			end = exp
		}
	}
	c.sec.mechanism = nil
	c.sec.authenticated = true
	c.setPrincipal(principal)
	c.sec.sessionEnd = end
	if !end.IsZero() {
		resp.SessionLifetimeMillis = max(1, end.Sub(now).Milliseconds())
	}
	return respond(resp)
}
