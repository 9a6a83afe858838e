package broker

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// TLSConfig is the broker's TLS settings, for SSL and SASL_SSL listeners,
// from PEM files as Kafka's ssl.keystore.type=PEM.
type TLSConfig struct {
	// CertFile is the broker's certificate chain, PEM
	// (ssl.keystore.certificate.chain). Required with a TLS listener.
	CertFile string
	// KeyFile is the certificate's private key, PEM, unencrypted
	// (ssl.keystore.key). Required with a TLS listener.
	KeyFile string
	// CAFile holds the CA certificates that client certificates are
	// verified against, PEM (ssl.truststore.certificates). Required when
	// ClientAuth is not "none".
	CAFile string
	// ClientAuth is ssl.client.auth: "required" (a client without a
	// certificate signed by CAFile is refused), "requested" (a client may
	// present one, which is then verified), or "none". Default "none".
	//
	// The principal of an SSL connection is "User:" and its certificate's
	// subject as an RFC 2253 distinguished name ("CN=app,O=Example"),
	// Kafka's default without ssl.principal.mapping.rules; without a
	// certificate it is User:ANONYMOUS.
	ClientAuth string
	// PrincipalMappingRules is ssl.principal.mapping.rules: how a
	// certificate's subject becomes the principal's name
	// (principal_mapping.go), e.g. "RULE:^CN=(.*?),OU=Apps.*$/$1/L,DEFAULT".
	// Default DEFAULT, the subject itself.
	PrincipalMappingRules string
}

// anonymous is the principal of a connection that has not authenticated.
const anonymous = "User:ANONYMOUS"

func (c *TLSConfig) validate() []error {
	var errs []error
	if c.CertFile == "" || c.KeyFile == "" {
		errs = append(errs, errors.New("a TLS listener needs ssl certificate and key files"))
	}
	switch c.ClientAuth {
	case "none", "":
	case "required", "requested":
		if c.CAFile == "" {
			errs = append(errs, fmt.Errorf("ssl.client.auth=%s needs a CA file", c.ClientAuth))
		}
	default:
		errs = append(errs, fmt.Errorf("ssl.client.auth %q: want required, requested or none", c.ClientAuth))
	}
	if _, err := parsePrincipalRules(c.PrincipalMappingRules); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// tlsFiles serves the TLS configuration of the broker's TLS listeners and
// reloads it when its files change: every handshake checks the files'
// contents, and a new key pair or CA takes effect for the handshakes after
// it, the connections already open keeping theirs (Kafka's dynamic
// keystore update, without an AlterConfigs). Files that no longer load
// are logged and the previous configuration kept.
type tlsFiles struct {
	cfg    TLSConfig
	logger *slog.Logger
	// principalRules map client certificates' subjects to principals.
	principalRules []principalRule

	mu sync.Mutex // guards the following
	// raw is what the files held when cur was built.
	raw [3][]byte
	cur *tls.Config
}

func newTLSFiles(cfg TLSConfig, logger *slog.Logger) (*tlsFiles, error) {
	rules, err := parsePrincipalRules(cfg.PrincipalMappingRules)
	if err != nil {
		return nil, err
	}
	t := &tlsFiles{cfg: cfg, logger: logger, principalRules: rules}
	raw, err := t.read()
	if err != nil {
		return nil, err
	}
	if err := t.buildLocked(raw); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *tlsFiles) read() ([3][]byte, error) {
	var raw [3][]byte
	for i, name := range []string{t.cfg.CertFile, t.cfg.KeyFile, t.cfg.CAFile} {
		if name == "" {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return raw, fmt.Errorf("broker: tls: %w", err)
		}
		raw[i] = b
	}
	return raw, nil
}

// buildLocked makes the server configuration from the files' contents.
// REQUIRES: t.mu held, or t not yet shared.
func (t *tlsFiles) buildLocked(raw [3][]byte) error {
	cert, err := tls.X509KeyPair(raw[0], raw[1])
	if err != nil {
		return fmt.Errorf("broker: tls: key pair from %s and %s: %w", t.cfg.CertFile, t.cfg.KeyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if raw[2] != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw[2]) {
			return fmt.Errorf("broker: tls: no PEM certificate in CA file %s", t.cfg.CAFile)
		}
		cfg.ClientCAs = pool
	}
	switch t.cfg.ClientAuth {
	case "required":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	case "requested":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	t.raw, t.cur = raw, cfg
	return nil
}

// serverConfig returns a configuration whose GetConfigForClient picks up
// changed files at each handshake.
func (t *tlsFiles) serverConfig() *tls.Config {
	return &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return t.current(), nil }}
}

func (t *tlsFiles) current() *tls.Config {
	raw, err := t.read()
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.logger.Error("tls reload: keeping the previous certificate", "err", err)
		return t.cur
	}
	if bytes.Equal(raw[0], t.raw[0]) && bytes.Equal(raw[1], t.raw[1]) && bytes.Equal(raw[2], t.raw[2]) {
		return t.cur
	}
	if err := t.buildLocked(raw); err != nil {
		// A certificate written before its key is caught here; the next
		// handshake tries again.
		t.logger.Error("tls reload: keeping the previous certificate", "err", err)
		return t.cur
	}
	t.logger.Info("tls: certificate reloaded", "cert", t.cfg.CertFile, "at", time.Now().Format(time.RFC3339))
	return t.cur
}
