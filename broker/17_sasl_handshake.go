package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslHandshake v1: the client names the mechanism it will authenticate
// with; the exchange then runs in SaslAuthenticate requests. It begins an
// authentication, or a re-authentication (KIP-368) on a connection
// already authenticated.
//
// Not here: v0, after which the SASL tokens travel unframed (clients
// since Kafka 1.0 send v1). On a listener without SASL the request is
// answered ILLEGAL_SASL_STATE, as Kafka's.

func init() { register(17, 1, 1, handleSaslHandshake) }

func handleSaslHandshake(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.SASLHandshakeRequest)
	resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
	if !c.saslListener() {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return respond(resp)
	}
	enabled := c.b.cfg.Security.SASL.Mechanisms
	resp.SupportedMechanisms = slices.Clone(enabled)
	if c.sec.mechanism != nil {
		// A second handshake before the first exchange ended.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return finishThenClose(resp)
	}
	if !slices.Contains(enabled, r.Mechanism) {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return finishThenClose(resp)
	}
	c.sec.mechanism = c.b.saslUsers.server(r.Mechanism, c.b.meta.Cluster())
	return respond(resp)
}

// finishThenClose answers resp, then closes the connection.
func finishThenClose(resp kmsg.Response) (finisher, error) {
	fin, _ := respond(resp)
	return fin, errCloseConn
}
