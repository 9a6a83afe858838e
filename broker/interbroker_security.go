package broker

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// Inter-broker and controller security.
//
// A broker reaches another broker for replica fetches (Fetch and
// OffsetForLeaderEpoch with its replica id) and transaction markers
// (WriteTxnMarkers) on the other's inter-broker listener
// (inter.broker.listener.name), the address it registered in the
// metadata. It speaks that listener's protocol: TLS trusting
// Security.TLS.CAFile and presenting the broker's own certificate, and
// SASL with the mechanism and credentials of Security.InterBroker. The
// accepting broker authorizes it as any client: with an authorizer, its
// principal needs CLUSTER_ACTION on the cluster (or to be a super user).
//
// The controller listener (Raft and forwarded metadata calls) is plain
// TCP, or with Security.ControllerTLS mutual TLS from the same files:
// both ends present a certificate signed by the CA, and a connection
// without one is refused in the handshake (meta/transport_tls.go).

// InterBrokerConfig is how this broker reaches the others.
type InterBrokerConfig struct {
	// ListenerName names the listener of Security.Listeners that other
	// brokers connect to (inter.broker.listener.name). Its address is the
	// one registered in the metadata. Default: the first listener.
	ListenerName string
	// SASLMechanism is the mechanism used on a SASL inter-broker listener
	// (sasl.mechanism.inter.broker.protocol): PLAIN, SCRAM-SHA-256 or
	// SCRAM-SHA-512. Default PLAIN. It must be among
	// Security.SASL.Mechanisms.
	SASLMechanism string
	// Username and Password are the broker's SASL credentials on a SASL
	// inter-broker listener (the username and password of the listener's
	// sasl.jaas.config). A PLAIN user must be among the configured users;
	// a SCRAM one among them or in the metadata. The principal is
	// User:Username; give it CLUSTER_ACTION or make it a super user.
	Username string
	Password string
}

// errInterBrokerSecurity marks a failure to secure or authenticate a
// connection to another broker, as distinct from not reaching it.
var errInterBrokerSecurity = errors.New("broker: inter-broker authentication failed")

// interBrokerSpec returns the inter-broker listener among specs.
func (c *Config) interBrokerSpec(specs []listenerSpec) (listenerSpec, error) {
	name := strings.ToUpper(strings.TrimSpace(c.Security.InterBroker.ListenerName))
	if name == "" {
		return specs[0], nil
	}
	for _, s := range specs {
		if s.name == name {
			return s, nil
		}
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.name)
	}
	return listenerSpec{}, fmt.Errorf("inter.broker.listener.name %s is not among the listeners (%s)", name, strings.Join(names, ", "))
}

// validateInterBroker reports the problems of the inter-broker and
// controller settings.
func (s *SecurityConfig) validateInterBroker(c *Config, specs []listenerSpec) []error {
	var errs []error
	ib, err := c.interBrokerSpec(specs)
	if err != nil {
		return []error{err}
	}
	// Only a cluster's brokers and the schema registry connect to the
	// inter-broker listener: a single broker needs no credentials.
	used := c.ControllerQuorum != "" || c.RegistryListen != ""
	if used && ib.tls() && s.TLS.CAFile == "" {
		errs = append(errs, fmt.Errorf("the inter-broker listener %s is %s: it needs a CA file to verify the other brokers' certificates", ib.name, ib.protocol))
	}
	if used && ib.sasl() {
		m := s.InterBroker.mechanism()
		switch {
		case !slices.Contains(passwordMechanisms, m):
			errs = append(errs, fmt.Errorf("sasl.mechanism.inter.broker.protocol %q: want one of %s", m, strings.Join(passwordMechanisms, ", ")))
		case !slices.Contains(s.SASL.Mechanisms, m):
			errs = append(errs, fmt.Errorf("sasl.mechanism.inter.broker.protocol %s is not among sasl.enabled.mechanisms", m))
		}
		if s.InterBroker.Username == "" || s.InterBroker.Password == "" {
			errs = append(errs, fmt.Errorf("the inter-broker listener %s is %s: it needs the broker's SASL username and password", ib.name, ib.protocol))
		}
	}
	if s.ControllerTLS {
		if c.ControllerQuorum == "" {
			errs = append(errs, errors.New("controller TLS needs a controller quorum"))
		}
		if s.TLS.CertFile == "" || s.TLS.KeyFile == "" || s.TLS.CAFile == "" {
			errs = append(errs, errors.New("controller TLS needs the ssl certificate, key and CA files"))
		}
	}
	return errs
}

func (c *InterBrokerConfig) mechanism() string {
	if c.SASLMechanism == "" {
		return MechanismPlain
	}
	return strings.ToUpper(c.SASLMechanism)
}

// string prints the settings in force, Kafka's names, no secrets.
func (s *SecurityConfig) interBrokerString() string {
	var b strings.Builder
	fmt.Fprintf(&b, "inter.broker.listener.name=%s\n", s.InterBroker.ListenerName)
	fmt.Fprintf(&b, "sasl.mechanism.inter.broker.protocol=%s\n", s.InterBroker.mechanism())
	fmt.Fprintf(&b, "inter.broker.sasl.username=%s\n", s.InterBroker.Username)
	ctl := ProtocolPlaintext
	if s.ControllerTLS {
		ctl = ProtocolSSL
	}
	fmt.Fprintf(&b, "controller.listener.security.protocol=%s\n", ctl)
	return b.String()
}

// interBroker is the inter-broker listener, bound: the one named, else
// the first (a name that is not a listener fails Validate).
func (b *Broker) interBroker() *listener {
	name := strings.ToUpper(strings.TrimSpace(b.cfg.Security.InterBroker.ListenerName))
	for _, l := range b.listeners {
		if l.spec.name == name {
			return l
		}
	}
	return b.listeners[0]
}

// registeredListeners is every listener as the metadata records it,
// "NAME://HOST:PORT,...".
func (b *Broker) registeredListeners() string {
	var parts []string
	for _, l := range b.listeners {
		parts = append(parts, l.spec.name+"://"+net.JoinHostPort(l.host, strconv.Itoa(int(l.port))))
	}
	return strings.Join(parts, ",")
}

// registeredEndpoint is broker br's listener named name, from its
// registration, or false when br did not register one by that name.
func registeredEndpoint(br meta.Broker, name string) (string, int32, bool) {
	for item := range strings.SplitSeq(br.Listeners, ",") {
		n, addr, ok := strings.Cut(item, "://")
		if !ok || n != name {
			continue
		}
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			return "", 0, false
		}
		port, err := strconv.Atoi(p)
		if err != nil {
			return "", 0, false
		}
		return h, int32(port), true
	}
	return "", 0, false
}

// controllerTLS returns the controller listener's TLS configurations
// (meta.Config.ServerTLS, ClientTLS), or nils without ControllerTLS. Both
// read the broker's TLS files at each handshake, so a renewed
// certificate takes effect without a restart.
func (b *Broker) controllerTLS() (*tls.Config, func(string) *tls.Config) {
	if !b.cfg.Security.ControllerTLS {
		return nil, nil
	}
	server := &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := b.tls.current().Clone()
		c.ClientAuth = tls.RequireAndVerifyClientCert
		return c, nil
	}}
	return server, b.tls.clientConfig
}

// clientConfig is the TLS configuration for dialling another node at
// host: the broker's certificate, presented when asked for, and the CA
// file as the trusted roots.
func (t *tlsFiles) clientConfig(host string) *tls.Config {
	cur := t.current()
	return &tls.Config{
		Certificates: cur.Certificates,
		RootCAs:      cur.ClientCAs,
		ServerName:   host,
		MinVersion:   tls.VersionTLS12,
	}
}

// interBrokerHandshakeTimeout bounds the TLS handshake and SASL exchange
// with another broker.
const interBrokerHandshakeTimeout = 10 * time.Second

// dialInterBroker opens a connection to another broker's inter-broker
// listener at addr, secured and authenticated as that listener wants.
func (b *Broker) dialInterBroker(ctx context.Context, addr string) (*peerConn, error) {
	pc, err := dialPeer(ctx, b.cfg.Dial, addr, b.cfg.NodeID)
	if err != nil {
		return nil, err
	}
	if err := b.secureInterBroker(ctx, pc, addr); err != nil {
		pc.close()
		return nil, err
	}
	return pc, nil
}

// secureInterBroker does the TLS handshake and the SASL exchange of the
// inter-broker listener's protocol on a fresh pc.
func (b *Broker) secureInterBroker(ctx context.Context, pc *peerConn, addr string) error {
	spec := b.interBroker().spec
	host, _, _ := net.SplitHostPort(addr)
	if spec.tls() {
		tc := tls.Client(pc.nc, b.tls.clientConfig(host))
		hctx, cancel := context.WithTimeout(ctx, interBrokerHandshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			return securityError(fmt.Errorf("TLS handshake with %s: %w", addr, err))
		}
		// Nothing was read through the old reader yet.
		pc.nc, pc.r = tc, bufio.NewReaderSize(tc, 64<<10)
	}
	if !spec.sasl() {
		if spec.tls() {
			// In TLS 1.3 the client's handshake ends before the server
			// has checked the client's certificate: a refusal arrives
			// with the first response. Ask for one now, so it is seen
			// here.
			// v2: the response of a flexible ApiVersions keeps the old
			// header, which peerConn does not special-case.
			req := kmsg.NewPtrApiVersionsRequest()
			req.SetVersion(2)
			if _, err := pc.request(ctx, req, interBrokerHandshakeTimeout); err != nil {
				return securityError(fmt.Errorf("TLS with %s: %w", addr, err))
			}
		}
		return nil
	}
	ib := b.cfg.Security.InterBroker
	mech := b.interBrokerMechanism()
	lifetime, err := saslClientExchange(ctx, pc, mech, host)
	if err != nil {
		return securityError(fmt.Errorf("SASL %s as %s at %s: %w", mech.Name(), ib.Username, addr, err))
	}
	if lifetime > 0 {
		// Reconnect, and so authenticate again, a little before the
		// session ends (KIP-368): the accepting broker closes a
		// connection that sends a request after it.
		pc.expires = time.Now().Add(lifetime * 9 / 10)
	}
	return nil
}

// securityError marks err with errInterBrokerSecurity when it is the
// other broker refusing this one (a TLS alert, a certificate that does
// not verify, a SASL error code) rather than a network fault or a
// timeout, which the caller retries quietly.
func securityError(err error) error {
	// A TLS alert from the other end reads as a net.OpError "remote
	// error" (crypto/tls wraps its unexported alert type so).
	var op *net.OpError
	alert := errors.As(err, &op) && op.Op == "remote error"
	var verify *tls.CertificateVerificationError
	var kerrErr *kerr.Error
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	if alert || errors.As(err, &verify) || errors.As(err, &kerrErr) ||
		errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return fmt.Errorf("%w: %w", errInterBrokerSecurity, err)
	}
	return err
}

// interBrokerClientOpts are the security options of a franz-go client
// of the inter-broker listener acting as this broker (the schema
// registry's): its TLS, each dial reading the TLS files afresh, and its
// SASL mechanism and credentials.
func (b *Broker) interBrokerClientOpts() []kgo.Opt {
	spec := b.interBroker().spec
	var opts []kgo.Opt
	if spec.tls() {
		opts = append(opts, kgo.Dialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			nc, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(nc, b.tls.clientConfig(host))
			if err := tc.HandshakeContext(ctx); err != nil {
				nc.Close()
				return nil, err
			}
			return tc, nil
		}))
	}
	if spec.sasl() {
		opts = append(opts, kgo.SASL(b.interBrokerMechanism()))
	}
	return opts
}

// interBrokerMechanism is the SASL mechanism this broker authenticates
// with to the others, with its credentials.
func (b *Broker) interBrokerMechanism() sasl.Mechanism {
	ib := b.cfg.Security.InterBroker
	switch ib.mechanism() {
	case MechanismScramSHA256:
		return scram.Auth{User: ib.Username, Pass: ib.Password}.AsSha256Mechanism()
	case MechanismScramSHA512:
		return scram.Auth{User: ib.Username, Pass: ib.Password}.AsSha512Mechanism()
	default:
		return plain.Auth{User: ib.Username, Pass: ib.Password}.AsMechanism()
	}
}

// saslClientExchange authenticates pc with mech: SaslHandshake v1, then
// SaslAuthenticate until the mechanism is done. It returns the session
// lifetime the broker gave, 0 for none.
func saslClientExchange(ctx context.Context, pc *peerConn, mech sasl.Mechanism, host string) (time.Duration, error) {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = mech.Name()
	resp, err := pc.request(ctx, hs, interBrokerHandshakeTimeout)
	if err != nil {
		return 0, err
	}
	if err := kerr.ErrorForCode(resp.(*kmsg.SASLHandshakeResponse).ErrorCode); err != nil {
		return 0, fmt.Errorf("SaslHandshake: %w (the broker offers %v)", err, resp.(*kmsg.SASLHandshakeResponse).SupportedMechanisms)
	}
	sess, msg, err := mech.Authenticate(ctx, host)
	if err != nil {
		return 0, err
	}
	for {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.SetVersion(2)
		req.SASLAuthBytes = msg
		r, err := pc.request(ctx, req, interBrokerHandshakeTimeout)
		if err != nil {
			return 0, err
		}
		ar := r.(*kmsg.SASLAuthenticateResponse)
		if err := kerr.ErrorForCode(ar.ErrorCode); err != nil {
			if ar.ErrorMessage != nil {
				return 0, fmt.Errorf("%w: %s", err, *ar.ErrorMessage)
			}
			return 0, err
		}
		done, next, err := sess.Challenge(ar.SASLAuthBytes)
		if err != nil {
			return 0, err
		}
		if done && len(next) == 0 {
			return time.Duration(ar.SessionLifetimeMillis) * time.Millisecond, nil
		}
		msg = next
	}
}

// interBrokerCheckTimeout bounds checkInterBrokerAuth's try of one
// broker. A broker that is starting too has its listener bound but not
// yet accepting, and stalls the handshake: short, so a cluster starting
// together is not held up long.
const interBrokerCheckTimeout = 3 * time.Second

// checkInterBrokerAuth authenticates once to the other registered
// brokers' inter-broker listeners before this broker registers, so a
// broker whose inter-broker credentials or certificate the cluster
// refuses does not join it: it would be assigned replicas it cannot
// fetch. It tries them all at once and stops at the first that accepts;
// brokers that cannot be reached are skipped, and with none reachable
// (the cluster's first start) there is nothing to check against.
func (b *Broker) checkInterBrokerAuth(ctx context.Context) error {
	spec := b.interBroker().spec
	if spec.protocol == ProtocolPlaintext || !b.meta.Clustered() {
		return nil
	}
	var peers []meta.Broker
	for id, br := range b.meta.Cluster().Brokers {
		if id != b.cfg.NodeID && !br.Fenced {
			peers = append(peers, br)
		}
	}
	if len(peers) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, interBrokerCheckTimeout)
	defer cancel()
	type result struct {
		id  int32
		err error
	}
	results := make(chan result, len(peers))
	for _, br := range peers {
		go func() {
			pc, err := b.dialInterBroker(ctx, net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port))))
			if err == nil {
				pc.close()
			}
			results <- result{br.ID, err}
		}()
	}
	var refusal error
	accepted := false
	for range peers {
		r := <-results
		switch {
		case r.err == nil:
			accepted = true
			cancel() // the others' answers no longer matter
		case errors.Is(r.err, errInterBrokerSecurity):
			if refusal == nil {
				refusal = fmt.Errorf("broker %d refused this broker on the inter-broker listener %s: %w", r.id, spec.name, r.err)
			}
		default:
			b.logger.Debug("broker: inter-broker check: peer unreachable", "peer", r.id, "err", r.err)
		}
	}
	if accepted {
		return nil
	}
	if refusal != nil {
		b.logger.Error("broker: the cluster refuses this broker's inter-broker credentials; not joining", "listener", spec.name, "err", refusal)
	}
	return refusal
}
