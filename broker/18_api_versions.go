package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions v0-v4. A request at a version beyond v4 is answered with a v0
// response carrying UNSUPPORTED_VERSION and, as Kafka's, only the
// ApiVersions entry, so the client retries at the highest version both
// sides know (KIP-511). Listing every key there instead makes franz-go
// settle for the v0 answer, which carries no features.
//
// From v3 the response carries features (KIP-584). Runnel supports and
// finalizes transaction.version 2: clients (franz-go, the Java producer
// from Kafka 4.0) take the KIP-890 part 2 path only when the finalized
// level is 2 — EndTxn v5 bumps the producer epoch with every transaction,
// Produce v12 and TxnOffsetCommit v5 add partitions implicitly — and stay
// on AddPartitionsToTxn / AddOffsetsToTxn otherwise. The levels are fixed
// for the broker's life, so the finalized-features epoch is a constant:
// clients keep the features of the highest epoch they have seen, and a
// changing epoch would only make them flap. metadata.version and the
// other KRaft features are not advertised: no client gates on them, and
// Runnel's metadata is not Kafka's.
//
// Not here: UpdateFeatures (changing a finalized level at run time).

func init() { register(18, 0, 4, handleApiVersions) }

// Feature levels (KIP-584), as Kafka names them.
const (
	// featureTransactionVersion is transaction.version; level 2 is
	// KIP-890 part 2.
	featureTransactionVersion = "transaction.version"
	transactionVersionMax     = 2
	// finalizedFeaturesEpoch versions the finalized levels; it changes
	// only when a release of Runnel changes them, and never decreases.
	finalizedFeaturesEpoch = 1
)

func handleApiVersions(c *conn, req *request) (finisher, error) {
	resp := req.kreq.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiKeys()
	setFeatures(resp)
	return respond(resp)
}

// setFeatures fills the supported and finalized features (sent from v3,
// in tagged fields; older versions drop them on encoding).
func setFeatures(resp *kmsg.ApiVersionsResponse) {
	sf := kmsg.NewApiVersionsResponseSupportedFeature()
	sf.Name = featureTransactionVersion
	sf.MinVersion, sf.MaxVersion = 0, transactionVersionMax
	resp.SupportedFeatures = []kmsg.ApiVersionsResponseSupportedFeature{sf}

	ff := kmsg.NewApiVersionsResponseFinalizedFeature()
	ff.Name = featureTransactionVersion
	// Kafka reports a finalized level as both bounds.
	ff.MinVersionLevel, ff.MaxVersionLevel = transactionVersionMax, transactionVersionMax
	resp.FinalizedFeatures = []kmsg.ApiVersionsResponseFinalizedFeature{ff}
	resp.FinalizedFeaturesEpoch = finalizedFeaturesEpoch
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
	h := handlers[18]
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MinVersion: h.min, MaxVersion: h.max}}
	return resp
}
