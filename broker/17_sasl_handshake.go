package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslHandshake v0-v1: the client names the mechanism it will
// authenticate with; from v1 the exchange then runs in SaslAuthenticate
// requests, after v0 its tokens come unframed (sasl_v0.go). It begins an
// authentication, or a re-authentication (KIP-368) on a connection
// already authenticated. On a listener without SASL the request is
// answered ILLEGAL_SASL_STATE, as Kafka's.

func init() { register(17, 0, 1, handleSaslHandshake) }

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
	c.sec.rawTokens = r.Version == 0
	return respond(resp)
}

// finishThenClose answers resp, then closes the connection.
func finishThenClose(resp kmsg.Response) (finisher, error) {
	fin, _ := respond(resp)
	return fin, errCloseConn
}
