package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// Security protocols of a listener, as Kafka names them
// (security.protocol, listener.security.protocol.map).
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"
)

var protocols = []string{ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL}

// listenerSpec is one entry of Config.Security.Listeners, resolved.
type listenerSpec struct {
	name     string // the listener name, e.g. "EXTERNAL"
	protocol string // one of protocols
	addr     string // host:port to bind
	// advHost and advPort are what clients connecting here are told
	// (advertised.listeners); advPort 0 means the bound port.
	advHost string
	advPort int
}

func (s listenerSpec) tls() bool { return s.protocol == ProtocolSSL || s.protocol == ProtocolSASLSSL }
func (s listenerSpec) sasl() bool {
	return s.protocol == ProtocolSASLPlaintext || s.protocol == ProtocolSASLSSL
}

// listener is a bound listenerSpec.
type listener struct {
	spec listenerSpec
	ln   net.Listener
	host string // advertised host
	port int32  // advertised port
}

// parseListenerList parses "NAME://host:port,NAME://host:port" into
// name -> host:port in order.
func parseListenerList(s string) ([]string, map[string]string, error) {
	var names []string
	addrs := map[string]string{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, ok := strings.Cut(item, "://")
		if !ok || name == "" {
			return nil, nil, fmt.Errorf("listener %q: want NAME://HOST:PORT", item)
		}
		name = strings.ToUpper(name)
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, nil, fmt.Errorf("listener %q: %v", item, err)
		}
		if _, dup := addrs[name]; dup {
			return nil, nil, fmt.Errorf("listener name %s given twice", name)
		}
		names = append(names, name)
		addrs[name] = addr
	}
	return names, addrs, nil
}

// parseProtocolMap parses listener.security.protocol.map,
// "NAME:PROTOCOL,NAME:PROTOCOL". The protocols map to themselves unless
// the map says otherwise, as in Kafka.
func parseProtocolMap(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, p := range protocols {
		m[p] = p
	}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, proto, ok := strings.Cut(item, ":")
		proto = strings.ToUpper(strings.TrimSpace(proto))
		if !ok || name == "" || !isProtocol(proto) {
			return nil, fmt.Errorf("listener.security.protocol.map entry %q: want NAME:PROTOCOL with PROTOCOL one of %s", item, strings.Join(protocols, ", "))
		}
		m[strings.ToUpper(strings.TrimSpace(name))] = proto
	}
	return m, nil
}

func isProtocol(p string) bool {
	for _, q := range protocols {
		if p == q {
			return true
		}
	}
	return false
}

// listenerSpecs resolves the configured listeners: Security.Listeners
// when set, else Listen as one PLAINTEXT listener. The first is the one
// registered in the metadata, which other brokers and the broker's own
// internal clients use.
func (c *Config) listenerSpecs() ([]listenerSpec, error) {
	sc := &c.Security
	if sc.Listeners == "" {
		return []listenerSpec{{name: ProtocolPlaintext, protocol: ProtocolPlaintext, addr: c.Listen, advHost: c.AdvertisedHost}}, nil
	}
	names, addrs, err := parseListenerList(sc.Listeners)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("listeners is empty")
	}
	pm, err := parseProtocolMap(sc.ProtocolMap)
	if err != nil {
		return nil, err
	}
	_, adv, err := parseListenerList(sc.AdvertisedListeners)
	if err != nil {
		return nil, fmt.Errorf("advertised.listeners: %w", err)
	}
	for name := range adv {
		if _, ok := addrs[name]; !ok {
			return nil, fmt.Errorf("advertised.listeners names %s, which is not among the listeners", name)
		}
	}
	var specs []listenerSpec
	for _, name := range names {
		proto, ok := pm[name]
		if !ok {
			return nil, fmt.Errorf("listener %s has no security protocol in listener.security.protocol.map", name)
		}
		s := listenerSpec{name: name, protocol: proto, addr: addrs[name], advHost: c.AdvertisedHost}
		if a, ok := adv[name]; ok {
			h, p, _ := net.SplitHostPort(a)
			port, err := strconv.Atoi(p)
			if err != nil || port < 0 || port > 65535 {
				return nil, fmt.Errorf("advertised.listeners %s: bad port %q", name, p)
			}
			s.advHost, s.advPort = h, port
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// openListeners binds every listener; the inter-broker one (by default
// the first) becomes b.ln, the one registered in the metadata.
func (b *Broker) openListeners() error {
	specs, err := b.cfg.listenerSpecs()
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	for _, s := range specs {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			b.closeListeners()
			return fmt.Errorf("broker: listen %s: %w", s.name, err)
		}
		l := &listener{spec: s, ln: ln}
		port := ln.Addr().(*net.TCPAddr).Port
		host := s.advHost
		if host == "" {
			h, _, _ := net.SplitHostPort(s.addr)
			host = h
			if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
				host = "127.0.0.1"
			}
		}
		if s.advPort != 0 {
			port = s.advPort
		}
		l.host, l.port = host, int32(port)
		b.listeners = append(b.listeners, l)
	}
	ib := b.interBroker()
	b.ln = ib.ln
	b.host, b.port = ib.host, ib.port
	b.advertised = net.JoinHostPort(ib.host, strconv.Itoa(int(ib.port)))
	return nil
}

func (b *Broker) closeListeners() {
	for _, l := range b.listeners {
		l.ln.Close()
	}
}

// ListenerAddr returns the host:port clients are told for the named
// listener (as named in Config.Security.Listeners, upper case), or "" if
// there is none. Without Security.Listeners the one listener is named
// PLAINTEXT.
func (b *Broker) ListenerAddr(name string) string {
	for _, l := range b.listeners {
		if l.spec.name == strings.ToUpper(name) {
			return net.JoinHostPort(l.host, strconv.Itoa(int(l.port)))
		}
	}
	return ""
}

// endpoint is the address to tell this connection's client for broker br:
// the listener of the name the client came in on (Kafka answers on the
// client's listener), for this broker and for others as they registered
// their listeners; for a broker that registered none of that name, its
// inter-broker listener.
func (c *conn) endpoint(br meta.Broker) (string, int32) {
	if c.sec.l == nil {
		return br.Host, br.Port
	}
	if br.ID == c.b.cfg.NodeID {
		return c.sec.l.host, c.sec.l.port
	}
	if h, p, ok := registeredEndpoint(br, c.sec.l.spec.name); ok {
		return h, p
	}
	return br.Host, br.Port
}

// wrapTLS makes nc a TLS server connection on a TLS listener and completes
// its handshake within the request read timeout, so a client that stalls
// in the handshake holds nothing for long.
func (c *conn) wrapTLS() error {
	if c.sec.l == nil || !c.sec.l.spec.tls() {
		return nil
	}
	tc := tls.Server(c.nc, c.b.tls.serverConfig())
	c.nc = tc
	tc.SetDeadline(time.Now().Add(c.b.cfg.RequestReadTimeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		return fmt.Errorf("broker: TLS handshake on %s: %w", c.sec.l.spec.name, err)
	}
	tc.SetDeadline(time.Time{})
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		name, err := mapPrincipal(c.b.tls.principalRules, certs[0].Subject.String())
		if err != nil {
			return err
		}
		c.setPrincipal("User:" + name)
	}
	return nil
}

// ListenerNames lists the listeners' names in the order configured.
func (b *Broker) ListenerNames() []string {
	var out []string
	for _, l := range b.listeners {
		out = append(out, l.spec.name)
	}
	return out
}
