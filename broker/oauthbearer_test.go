package broker_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// issuer signs test tokens, standing in for an identity provider.
type issuer struct {
	kid string
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
}

func newIssuer(t *testing.T, kid string) *issuer {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &issuer{kid: kid, rsa: rk, ec: ek}
}

// jwks is the issuer's public key set: its RSA key as kid, its EC key as
// kid-ec.
func (is *issuer) jwks() []byte {
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	set := map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": is.kid, "use": "sig", "n": b64(is.rsa.N.Bytes()), "e": b64(big.NewInt(int64(is.rsa.E)).Bytes())},
		{"kty": "EC", "kid": is.kid + "-ec", "crv": "P-256", "x": b64(is.ec.X.FillBytes(make([]byte, 32))), "y": b64(is.ec.Y.FillBytes(make([]byte, 32)))},
	}}
	out, _ := json.Marshal(set)
	return out
}

// token signs claims with alg (RS256, ES256 or none).
func (is *issuer) token(t *testing.T, alg string, claims map[string]any) string {
	t.Helper()
	kid := is.kid
	if alg == "ES256" {
		kid += "-ec"
	}
	h, _ := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"})
	c, _ := json.Marshal(claims)
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	digest := sha256.Sum256([]byte(signed))
	var sig []byte
	var err error
	switch alg {
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, is.rsa, crypto.SHA256, digest[:])
	case "ES256":
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, is.ec, digest[:])
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	case "none":
	}
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// claims are valid claims for sub, expiring in life.
func claims(sub string, life time.Duration) map[string]any {
	now := time.Now()
	return map[string]any{"sub": sub, "iss": "https://idp.example", "aud": []string{"kafka", "runnel"},
		"iat": now.Unix(), "exp": now.Add(life).Unix()}
}

func with(c map[string]any, k string, v any) map[string]any {
	c = maps.Clone(c)
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

func oauthBroker(t *testing.T, cfg broker.OAuthBearerConfig) *broker.Broker {
	t.Helper()
	return testutil.StartBroker(t, broker.Config{
		Security: broker.SecurityConfig{
			Listeners: "SASL_PLAINTEXT://127.0.0.1:0",
			SASL: broker.SASLConfig{
				Mechanisms:  []string{broker.MechanismOAuthBearer},
				OAuthBearer: cfg,
			},
		},
	})
}

// TestOAuthBearer authenticates franz-go's OAUTHBEARER client with tokens
// signed by RSA and EC keys of the broker's key set, and refuses expired,
// early, foreign, forged, unsigned and subject-less tokens, each with
// SASL_AUTHENTICATION_FAILED saying why.
func TestOAuthBearer(t *testing.T) {
	idp := newIssuer(t, "key-1")
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, idp.jwks(), 0o644); err != nil {
		t.Fatal(err)
	}
	b := oauthBroker(t, broker.OAuthBearerConfig{JWKSFile: jwks, Audience: []string{"runnel"}, Issuer: "https://idp.example"})
	addr := b.ListenerAddr("SASL_PLAINTEXT")
	auth := func(tok string) kgo.Opt { return kgo.SASL(oauth.Auth{Token: tok}.AsMechanism()) }

	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			cl := newClient(t, addr, auth(idp.token(t, alg, claims("alice", time.Hour))))
			roundTrip(t, cl, "oauth-"+strings.ToLower(alg))
			if got := b.Principals(); !slices.Contains(got, "User:alice") {
				t.Fatalf("principals %v, want User:alice", got)
			}
			cl.Close()
		})
	}

	forger := newIssuer(t, "key-1") // the same kid, another key
	good := claims("alice", time.Hour)
	refusals := []struct {
		name, token, says string
	}{
		{"expired", idp.token(t, "RS256", with(good, "exp", time.Now().Add(-time.Hour).Unix())), "token expired"},
		{"not yet valid", idp.token(t, "RS256", with(good, "nbf", time.Now().Add(time.Hour).Unix())), "not valid before"},
		{"wrong audience", idp.token(t, "RS256", with(good, "aud", "billing")), "audience"},
		{"wrong issuer", idp.token(t, "RS256", with(good, "iss", "https://evil.example")), "issuer"},
		{"no expiry", idp.token(t, "RS256", with(good, "exp", nil)), "no exp"},
		{"no subject", idp.token(t, "RS256", with(good, "sub", nil)), `no "sub" claim`},
		{"forged signature", forger.token(t, "RS256", good), "does not verify"},
		{"unknown key", forgedKid(t, idp, good), `no key "key-9"`},
		{"unsigned", idp.token(t, "none", good), "unsigned token"},
		{"not a jwt", "opaque-token", "not a compact JWT"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			err := pingErr(t, addr, auth(tc.token))
			if !errors.Is(err, kerr.SaslAuthenticationFailed) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want SASL_AUTHENTICATION_FAILED saying %q", err, tc.says)
			}
			waitConns(t, b, 0)
		})
	}

	t.Run("session ends with the token", func(t *testing.T) {
		r := dialSASL(t, addr)
		if hs := r.handshake(broker.MechanismOAuthBearer); hs.ErrorCode != 0 {
			t.Fatalf("handshake error %d", hs.ErrorCode)
		}
		resp := r.authenticate("n,,\x01auth=Bearer " + idp.token(t, "ES256", claims("alice", 90*time.Second)) + "\x01\x01")
		if resp.ErrorCode != 0 {
			t.Fatalf("authenticate: error %d %v", resp.ErrorCode, resp.ErrorMessage)
		}
		if l := resp.SessionLifetimeMillis; l <= 0 || l > 90_000 {
			t.Fatalf("session lifetime %dms, want the token's remaining 90s at most", l)
		}
	})

	t.Run("key rotation", func(t *testing.T) {
		next := newIssuer(t, "key-2")
		if err := pingErr(t, addr, auth(next.token(t, "RS256", good))); err == nil {
			t.Fatal("a token of a key not yet in the set was accepted")
		}
		if err := os.WriteFile(jwks, next.jwks(), 0o644); err != nil {
			t.Fatal(err)
		}
		// A new modification time, even on a coarse-grained file system.
		later := time.Now().Add(time.Minute)
		if err := os.Chtimes(jwks, later, later); err != nil {
			t.Fatal(err)
		}
		if err := pingErr(t, addr, auth(next.token(t, "RS256", good))); err != nil {
			t.Fatalf("a token of the rotated-in key: %v", err)
		}
	})
}

// forgedKid is a token naming a key the set does not hold.
func forgedKid(t *testing.T, is *issuer, c map[string]any) string {
	t.Helper()
	other := *is
	other.kid = "key-9"
	return other.token(t, "RS256", c)
}

// TestOAuthBearerUnsecured accepts unsigned tokens when told to, as
// Kafka's default unsecured validator does, and still checks their
// expiry.
func TestOAuthBearerUnsecured(t *testing.T) {
	b := oauthBroker(t, broker.OAuthBearerConfig{Unsecured: true})
	addr := b.ListenerAddr("SASL_PLAINTEXT")
	idp := newIssuer(t, "unused")
	cl := newClient(t, addr, kgo.SASL(oauth.Auth{Token: idp.token(t, "none", claims("bob", time.Hour))}.AsMechanism()))
	roundTrip(t, cl, "oauth-unsecured")
	if got := b.Principals(); !slices.Contains(got, "User:bob") {
		t.Fatalf("principals %v, want User:bob", got)
	}
	expired := idp.token(t, "none", with(claims("bob", time.Hour), "exp", time.Now().Add(-time.Hour).Unix()))
	if err := pingErr(t, addr, kgo.SASL(oauth.Auth{Token: expired}.AsMechanism())); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("expired unsigned token: %v", err)
	}
}

// TestOAuthBearerConfigValidate: OAUTHBEARER without a key set or
// unsecured tokens, or with a key set that holds no usable key, does not
// start.
func TestOAuthBearerConfigValidate(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(bad, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  broker.OAuthBearerConfig
		says string
	}{
		{broker.OAuthBearerConfig{}, "needs a JWKS file"},
		{broker.OAuthBearerConfig{JWKSFile: bad}, "no RSA or EC signing key"},
		{broker.OAuthBearerConfig{JWKSFile: filepath.Join(t.TempDir(), "missing.json")}, "no such file"},
	} {
		cfg := broker.Config{DataDir: t.TempDir(), Security: broker.SecurityConfig{
			Listeners: "SASL_PLAINTEXT://127.0.0.1:0",
			SASL:      broker.SASLConfig{Mechanisms: []string{broker.MechanismOAuthBearer}, OAuthBearer: tc.cfg},
		}}
		b, err := broker.Start(context.Background(), cfg)
		if err == nil {
			b.Close()
			t.Fatalf("%+v: broker started", tc.cfg)
		}
		if !strings.Contains(err.Error(), tc.says) {
			t.Fatalf("%+v: %v, want it to say %q", tc.cfg, err, tc.says)
		}
	}
}
