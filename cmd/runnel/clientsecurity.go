package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// securityProps are the security properties of a --command-config file,
// by their Kafka client names (and librdkafka's where Kafka's take a JKS
// keystore: certificates and keys here are PEM files).
type securityProps struct {
	protocol  string // security.protocol, default PLAINTEXT
	mechanism string // sasl.mechanism, default PLAIN
	username  string // sasl.username, or from sasl.jaas.config
	password  string // sasl.password, or from sasl.jaas.config
	caFile    string // ssl.truststore.location or ssl.ca.location
	certFile  string // ssl.keystore.location or ssl.certificate.location
	keyFile   string // ssl.key.location; default certFile (a PEM keystore holds both)
	// noHostnameCheck is ssl.endpoint.identification.algorithm set empty.
	noHostnameCheck bool
}

var securityPropNames = []string{"security.protocol", "sasl.mechanism", "sasl.jaas.config", "sasl.username", "sasl.password",
	"ssl.truststore.location", "ssl.truststore.type", "ssl.ca.location", "ssl.keystore.location", "ssl.keystore.type",
	"ssl.certificate.location", "ssl.key.location", "ssl.endpoint.identification.algorithm"}

// jaasOption matches one KEY="VALUE" option of a JAAS login module line.
var jaasOption = regexp.MustCompile(`(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"`)

// set takes one property; known is false for a property that is not a
// security one, and want, when not empty, says what the value should be.
func (s *securityProps) set(key, value string) (known bool, want string) {
	switch key {
	case "security.protocol":
		v := strings.ToUpper(value)
		switch v {
		case "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL":
			s.protocol = v
		default:
			return true, "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
		}
	case "sasl.mechanism":
		v := strings.ToUpper(value)
		switch v {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
			s.mechanism = v
		default:
			return true, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
		}
	case "sasl.jaas.config":
		// e.g. org.apache.kafka.common.security.scram.ScramLoginModule
		// required username="alice" password="secret";
		for _, m := range jaasOption.FindAllStringSubmatch(value, -1) {
			v := strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(m[2])
			switch m[1] {
			case "username":
				s.username = v
			case "password":
				s.password = v
			}
		}
		if s.username == "" {
			return true, `a login module line with username="..." password="..."`
		}
	case "sasl.username":
		s.username = value
	case "sasl.password":
		s.password = value
	case "ssl.truststore.location", "ssl.ca.location":
		s.caFile = value
	case "ssl.keystore.location", "ssl.certificate.location":
		s.certFile = value
	case "ssl.key.location":
		s.keyFile = value
	case "ssl.truststore.type", "ssl.keystore.type":
		if !strings.EqualFold(value, "PEM") {
			return true, "PEM (JKS and PKCS12 stores are not read; convert them to PEM)"
		}
	case "ssl.endpoint.identification.algorithm":
		switch strings.ToLower(value) {
		case "":
			s.noHostnameCheck = true
		case "https":
			s.noHostnameCheck = false
		default:
			return true, "https or empty"
		}
	default:
		return false, ""
	}
	return true, ""
}

func (s *securityProps) sasl() bool {
	return s.protocol == "SASL_PLAINTEXT" || s.protocol == "SASL_SSL"
}

func (s *securityProps) tls() bool { return s.protocol == "SSL" || s.protocol == "SASL_SSL" }

// check reports settings that cannot work together.
func (s *securityProps) check() error {
	if s.sasl() && (s.username == "" || s.password == "") {
		return fmt.Errorf("security.protocol=%s needs a user and password (sasl.jaas.config, or sasl.username and sasl.password)", s.protocol)
	}
	if !s.sasl() && (s.username != "" || s.mechanism != "") {
		return errors.New("SASL settings given, but security.protocol is not SASL_PLAINTEXT or SASL_SSL")
	}
	if !s.tls() && (s.caFile != "" || s.certFile != "" || s.keyFile != "") {
		return errors.New("ssl settings given, but security.protocol is not SSL or SASL_SSL")
	}
	return nil
}

// opts are the kgo options for the settings.
func (s *securityProps) opts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if s.tls() {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.noHostnameCheck}
		if s.caFile != "" {
			pem, err := os.ReadFile(s.caFile)
			if err != nil {
				return nil, fmt.Errorf("ssl truststore: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ssl truststore %s: no PEM certificate", s.caFile)
			}
			cfg.RootCAs = pool
		}
		if s.noHostnameCheck {
			// Still verify the chain against the trust store; only the
			// host name is not checked.
			cfg.VerifyConnection = verifyChainOnly(cfg.RootCAs)
		}
		if s.certFile != "" {
			key := s.keyFile
			if key == "" {
				key = s.certFile
			}
			c, err := tls.LoadX509KeyPair(s.certFile, key)
			if err != nil {
				return nil, fmt.Errorf("ssl keystore: %w", err)
			}
			cfg.Certificates = []tls.Certificate{c}
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if s.sasl() {
		switch s.mechanism {
		case "", "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: s.username, Pass: s.password}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: s.username, Pass: s.password}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: s.username, Pass: s.password}.AsSha512Mechanism()))
		}
	}
	return opts, nil
}

// verifyChainOnly verifies the server's chain against roots (the system's
// when nil) without its host name.
func verifyChainOnly(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the broker sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
		return err
	}
}
