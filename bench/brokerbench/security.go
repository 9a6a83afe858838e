package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// secMode is how the benchmark's clients reach a broker (-security).
type secMode string

const (
	plaintext secMode = "plaintext"
	tlsMode   secMode = "tls"      // Kafka's SSL: TLS, no client certificate
	saslSSL   secMode = "sasl_ssl" // TLS, then SASL/SCRAM-SHA-512
)

// parseSecurity reads -security: a comma-separated list of modes, each
// once, plaintext first when named (the other modes are reported as a
// fraction of it).
func parseSecurity(list string) ([]secMode, error) {
	var modes []secMode
	for s := range strings.SplitSeq(list, ",") {
		m := secMode(strings.ToLower(strings.TrimSpace(s)))
		switch m {
		case "":
			continue
		case plaintext, tlsMode, saslSSL:
		default:
			return nil, fmt.Errorf("-security: unknown mode %q (want plaintext, tls, sasl_ssl)", s)
		}
		if !slices.Contains(modes, m) {
			modes = append(modes, m)
		}
	}
	if len(modes) == 0 {
		return nil, fmt.Errorf("-security: no mode named")
	}
	if i := slices.Index(modes, plaintext); i > 0 {
		modes = slices.Insert(slices.Delete(modes, i, i+1), 0, plaintext)
	}
	return modes, nil
}

// The SASL user every secured broker knows and every client logs in as.
const (
	benchUser     = "bench"
	benchPassword = "bench-secret"
)

// security is what a secured broker and its clients share: the mode, a CA
// the benchmark generated, and the broker certificate it signed for
// 127.0.0.1 (ECDSA P-256), in PEM files.
type security struct {
	mode     secMode
	caFile   string
	certFile string // the broker's certificate
	keyFile  string // its key, unencrypted PKCS#8
	certPEM  []byte
	keyPEM   []byte
	pool     *x509.CertPool
}

// protocol is the Kafka security protocol of the broker's listener.
func (s *security) protocol() string {
	if s.mode == saslSSL {
		return "SASL_SSL"
	}
	return "SSL"
}

// clientOpts are the franz-go options of every client of a secured
// broker: TLS trusting the benchmark's CA, and for sasl_ssl SCRAM-SHA-512
// as benchUser. None for a nil (plaintext) security.
func (s *security) clientOpts() []kgo.Opt {
	if s == nil {
		return nil
	}
	opts := []kgo.Opt{kgo.DialTLSConfig(&tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12})}
	if s.mode == saslSSL {
		opts = append(opts, kgo.SASL(scram.Auth{User: benchUser, Pass: benchPassword}.AsSha512Mechanism()))
	}
	return opts
}

// newSecurity generates a CA and a broker certificate for 127.0.0.1 into
// dir, for mode.
func newSecurity(mode secMode, dir string) (*security, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "brokerbench CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "brokerbench broker"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	s := &security{
		mode:     mode,
		caFile:   filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "broker.pem"),
		keyFile:  filepath.Join(dir, "broker-key.pem"),
		certPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		pool:     x509.NewCertPool(),
	}
	s.pool.AddCert(ca)
	for path, data := range map[string][]byte{
		s.caFile:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		s.certFile: s.certPEM,
		s.keyFile:  s.keyPEM,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// kafkaPEM is a PEM block as one line of a Kafka properties file
// (ssl.keystore.key and ssl.keystore.certificate.chain take the PEM text
// as their value): the lines joined, which Kafka's PEM reader accepts.
func kafkaPEM(b []byte) string {
	return strings.Join(strings.Fields(string(b)), " ")
}

// peerName is a peer's name in the report: its broker's, with the
// security mode after a slash unless plaintext ("runnel/tls").
func peerName(broker string, sec *security) string {
	if sec == nil {
		return broker
	}
	return broker + "/" + string(sec.mode)
}
