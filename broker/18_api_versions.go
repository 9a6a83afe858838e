package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions v0-v4. A request at a version beyond v4 is answered with a v0
// response carrying UNSUPPORTED_VERSION and the key list, so the client can
// retry at a version both sides know (KIP-511). Features (KIP-584) are not
// advertised: nothing here is gated on them yet.

func init() { register(18, 0, 4, handleApiVersions) }

func handleApiVersions(c *conn, req *request) (finisher, error) {
	resp := req.kreq.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiKeys()
	return respond(resp)
}

func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := supportedKeys()
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(keys))
	for _, k := range keys {
		h := handlers[k]
		out = append(out, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: h.min, MaxVersion: h.max})
	}
	return out
}

func apiVersionsUnsupported() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = apiKeys()
	return resp
}
