package runnel

import (
	"crypto/tls"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// TLS connects to the brokers over TLS with cfg (security.protocol SSL, or
// SASL_SSL with SASL): cfg.RootCAs verifies the brokers' certificates
// (ssl.truststore.*), and cfg.Certificates is the app's own for brokers
// that ask for one (ssl.keystore.*, with ssl.client.auth on the broker).
// Default: plaintext. Every client of the app uses it: the consumers and
// producers of its workers, restoration, standbys, global stores and its
// admin client. Not with the embedded broker, which is plaintext.
func TLS(cfg *tls.Config) AppOption {
	return appOpt(func(o *AppOptions) { o.TLS = cfg })
}

// SASL authenticates to the brokers with m (security.protocol
// SASL_PLAINTEXT, or SASL_SSL with TLS; sasl.mechanism and
// sasl.jaas.config): franz-go's sasl/plain or sasl/scram, e.g.
//
//	runnel.SASL(scram.Auth{User: "app", Pass: pass}.AsSha512Mechanism())
//
// Default: none. Not with the embedded broker.
func SASL(m sasl.Mechanism) AppOption {
	return appOpt(func(o *AppOptions) { o.SASL = m })
}

// clientOpts are the kgo options every client of the app takes: TLS and
// SASL, and the application's logger for the client's warnings (see
// clientLogger); a new slice with no spare capacity each call, so
// appending to it never writes into another's.
func (o *AppOptions) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.WithLogger(clientLogger{o.Logger})}
	if o.TLS != nil {
		// kgo sets ServerName from the address it dials when it is empty.
		opts = append(opts, kgo.DialTLSConfig(o.TLS.Clone()))
	}
	if o.SASL != nil {
		opts = append(opts, kgo.SASL(o.SASL))
	}
	return slices.Clip(opts)
}

func (o *AppOptions) securityProblems() []string {
	if len(o.Brokers) == 0 && (o.TLS != nil || o.SASL != nil) {
		return []string{"TLS and SASL need Brokers: the embedded broker is plaintext"}
	}
	return nil
}
