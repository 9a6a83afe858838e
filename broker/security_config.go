package broker

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// SecurityConfig is the broker's listeners and their security, as Kafka's
// listeners, advertised.listeners and listener.security.protocol.map, with
// the TLS and SASL settings they use.
//
// Without Listeners the broker has one PLAINTEXT listener on
// Config.Listen, as before. With it, Config.Listen is not used. Every
// listener is registered in the metadata; the inter-broker listener
// (InterBroker.ListenerName, default the first) is the one other brokers
// connect to, with its own security (interbroker_security.go). The
// schema registry is a client of the inter-broker listener with the
// broker's own credentials.
type SecurityConfig struct {
	// Listeners is "NAME://HOST:PORT,..." (listeners), e.g.
	// "PLAINTEXT://127.0.0.1:9092,SASL_SSL://:9094". A name is a protocol
	// or a name that ProtocolMap maps to one. Port 0 picks a free port.
	Listeners string
	// AdvertisedListeners is "NAME://HOST:PORT,..." (advertised.listeners):
	// what clients that connect to the listener NAME are told. Default
	// for a listener not named: its own host (127.0.0.1 for a wildcard
	// one, or Config.AdvertisedHost) and bound port.
	AdvertisedListeners string
	// ProtocolMap is "NAME:PROTOCOL,..." (listener.security.protocol.map),
	// PROTOCOL one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL. Each
	// protocol maps to itself unless named here.
	ProtocolMap string
	// TLS configures SSL and SASL_SSL listeners.
	TLS TLSConfig
	// SASL configures SASL_PLAINTEXT and SASL_SSL listeners.
	SASL SASLConfig
	// Authorizer turns on ACLs (authorizer.go).
	Authorizer AuthorizerConfig
	// InterBroker is the listener other brokers connect to and this
	// broker's credentials on it (inter.broker.listener.name,
	// sasl.mechanism.inter.broker.protocol).
	InterBroker InterBrokerConfig
	// ControllerTLS makes the controller listener (Config.ControllerListen
	// and the quorum's addresses: Raft and forwarded metadata calls)
	// mutual TLS with TLS's certificate, key and CA: both ends present a
	// certificate signed by the CA, and a connection without one is
	// refused in the handshake. As Kafka's controller listener mapped to
	// SSL with ssl.client.auth=required. Every node of the quorum must
	// agree. Default false: plain TCP.
	ControllerTLS bool
}

func (s *SecurityConfig) ensureDefaults() { s.SASL.ensureDefaults() }

// validate reports the security settings' problems; c is the whole
// configuration, for the listeners' defaults and what else needs them.
func (s *SecurityConfig) validate(c *Config) []error {
	specs, err := c.listenerSpecs()
	if err != nil {
		return []error{err}
	}
	var errs []error
	var useTLS, useSASL bool
	for _, l := range specs {
		useTLS = useTLS || l.tls()
		useSASL = useSASL || l.sasl()
	}
	if useTLS || s.ControllerTLS {
		errs = append(errs, s.TLS.validate()...)
	}
	if useSASL {
		errs = append(errs, s.SASL.validate()...)
	}
	errs = append(errs, s.Authorizer.validate()...)
	errs = append(errs, s.validateInterBroker(c, specs)...)
	return errs
}

// string prints the settings in force, Kafka's names, no secrets.
func (s *SecurityConfig) string() string {
	var b strings.Builder
	fmt.Fprintf(&b, "advertised.listeners=%s\n", s.AdvertisedListeners)
	fmt.Fprintf(&b, "listener.security.protocol.map=%s\n", s.ProtocolMap)
	fmt.Fprintf(&b, "ssl.keystore.certificate.chain=%s\n", s.TLS.CertFile)
	fmt.Fprintf(&b, "ssl.truststore.certificates=%s\n", s.TLS.CAFile)
	fmt.Fprintf(&b, "ssl.client.auth=%s\n", s.TLS.ClientAuth)
	fmt.Fprintf(&b, "sasl.enabled.mechanisms=%s\n", strings.Join(s.SASL.Mechanisms, ","))
	fmt.Fprintf(&b, "sasl.users=%d\n", len(s.SASL.Users))
	fmt.Fprintf(&b, "sasl.users.file=%s\n", s.SASL.UsersFile)
	fmt.Fprintf(&b, "connections.max.reauth.ms=%d\n", s.SASL.ConnectionsMaxReauth.Milliseconds())
	if slices.Contains(s.SASL.Mechanisms, MechanismOAuthBearer) {
		o := s.SASL.OAuthBearer
		fmt.Fprintf(&b, "sasl.oauthbearer.jwks.endpoint.url=%s\n", o.JWKSFile)
		fmt.Fprintf(&b, "sasl.oauthbearer.expected.audience=%s\n", strings.Join(o.Audience, ","))
		fmt.Fprintf(&b, "sasl.oauthbearer.expected.issuer=%s\n", o.Issuer)
		fmt.Fprintf(&b, "sasl.oauthbearer.sub.claim.name=%s\n", o.SubClaim)
		fmt.Fprintf(&b, "sasl.oauthbearer.unsecured=%t\n", o.Unsecured)
	}
	b.WriteString(s.Authorizer.string())
	b.WriteString(s.interBrokerString())
	return b.String()
}

// startSecurity loads what the listeners need: the TLS files and the SASL
// users.
func (b *Broker) startSecurity() error {
	var useTLS, useSASL bool
	for _, l := range b.listeners {
		useTLS = useTLS || l.spec.tls()
		useSASL = useSASL || l.spec.sasl()
	}
	useTLS = useTLS || b.cfg.Security.ControllerTLS
	var err error
	if useTLS {
		if b.tls, err = newTLSFiles(b.cfg.Security.TLS, b.logger); err != nil {
			return err
		}
	}
	if useSASL {
		if b.saslUsers, err = newSASLUsers(b.cfg.Security.SASL, b.cfg.Now); err != nil {
			return err
		}
		// SCRAM users may all be in the metadata, created later with
		// AlterUserScramCredentials; PLAIN alone needs configured users,
		// OAUTHBEARER none.
		scram := slices.Contains(b.cfg.Security.SASL.Mechanisms, MechanismScramSHA256) || slices.Contains(b.cfg.Security.SASL.Mechanisms, MechanismScramSHA512)
		if len(b.saslUsers.plain) == 0 && b.cfg.Security.SASL.needsUsers() && !scram {
			return errors.New("broker: a SASL listener with only PLAIN and no users (Security.SASL.Users or UsersFile)")
		}
	}
	return nil
}

// listenersString is listeners in Kafka's form: Security.Listeners, or
// Listen as the one PLAINTEXT listener.
func (c *Config) listenersString() string {
	if c.Security.Listeners != "" {
		return c.Security.Listeners
	}
	return "PLAINTEXT://" + c.Listen
}
