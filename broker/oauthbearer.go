package broker

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// SASL/OAUTHBEARER (RFC 7628, Kafka's KIP-255 and KIP-768): the client
// sends a JSON Web Token as a bearer token, and the broker validates it
// as Kafka's OAuthBearerValidatorCallbackHandler does: a signature by a
// key of the configured JWKS, an expiry (and not-before and issued-at
// within the clock skew), the expected audience and issuer when set, and
// the principal from the subject claim. The session ends when the token
// expires (KIP-368), or earlier with connections.max.reauth.ms.
//
// With Unsecured, unsigned tokens (alg "none") are accepted, as Kafka's
// default OAuthBearerUnsecuredValidatorCallbackHandler does: for
// development only, since anyone can then claim any subject.
//
// Not here: fetching the JWKS from an HTTPS endpoint (the keys come from a
// file, read again when it changes), scope checks, and the extensions
// callback (extensions are accepted and ignored).

// MechanismOAuthBearer is SASL/OAUTHBEARER. It is not enabled by default:
// name it in SASLConfig.Mechanisms and configure SASLConfig.OAuthBearer.
const MechanismOAuthBearer = "OAUTHBEARER"

// OAuthBearerConfig is how the broker validates OAUTHBEARER tokens.
type OAuthBearerConfig struct {
	// JWKSFile is a JSON Web Key Set file (sasl.oauthbearer.jwks.endpoint.url
	// with a file: URL): the public keys, RSA or EC, that may sign
	// tokens, chosen by the token's "kid". It is read again when it
	// changes, so keys rotate without a restart.
	JWKSFile string
	// Audience, when set, must contain one of the token's "aud" values
	// (sasl.oauthbearer.expected.audience).
	Audience []string
	// Issuer, when set, must equal the token's "iss"
	// (sasl.oauthbearer.expected.issuer).
	Issuer string
	// SubClaim names the claim holding the principal's name
	// (sasl.oauthbearer.sub.claim.name). Default "sub".
	SubClaim string
	// ClockSkew is how far the token's times may be off the broker's
	// clock (sasl.oauthbearer.clock.skew.seconds). Default 30s.
	ClockSkew time.Duration
	// Unsecured accepts unsigned tokens (alg "none"), for development.
	Unsecured bool
}

func (c *OAuthBearerConfig) ensureDefaults() {
	if c.SubClaim == "" {
		c.SubClaim = "sub"
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = 30 * time.Second
	}
}

func (c *OAuthBearerConfig) validate() []error {
	var errs []error
	if c.JWKSFile == "" && !c.Unsecured {
		errs = append(errs, errors.New("OAUTHBEARER needs a JWKS file (sasl.oauthbearer.jwks.endpoint.url) or unsecured tokens"))
	}
	if c.JWKSFile != "" {
		if _, err := readJWKS(c.JWKSFile); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ClockSkew < 0 {
		errs = append(errs, fmt.Errorf("OAUTHBEARER clock skew %v is negative", c.ClockSkew))
	}
	return errs
}

// oauthValidator validates tokens against a key set it keeps current.
type oauthValidator struct {
	cfg OAuthBearerConfig
	now func() time.Time

	mu      sync.Mutex
	keys    map[string]crypto.PublicKey // by kid; "" for a key without one
	modTime time.Time
}

func newOAuthValidator(cfg OAuthBearerConfig, now func() time.Time) *oauthValidator {
	cfg.ensureDefaults()
	return &oauthValidator{cfg: cfg, now: now}
}

// keySet returns the current keys, reading the file again when it changed.
func (v *oauthValidator) keySet() (map[string]crypto.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	st, err := os.Stat(v.cfg.JWKSFile)
	if err != nil {
		return nil, fmt.Errorf("OAUTHBEARER key set: %w", err)
	}
	if v.keys == nil || !st.ModTime().Equal(v.modTime) {
		keys, err := readJWKS(v.cfg.JWKSFile)
		if err != nil {
			return nil, err
		}
		v.keys, v.modTime = keys, st.ModTime()
	}
	return v.keys, nil
}

// oauthServer is one OAUTHBEARER exchange: a single client message.
type oauthServer struct {
	v      *oauthValidator
	expiry time.Time
}

func (s *oauthServer) step(in []byte) ([]byte, string, error) {
	fail := func(format string, args ...any) ([]byte, string, error) {
		return nil, "", fmt.Errorf("%w: OAUTHBEARER: %s", errSASLFailed, fmt.Sprintf(format, args...))
	}
	// gs2-header, then kvpairs each ended by \x01, then a final \x01.
	header, rest, ok := strings.Cut(string(in), "\x01")
	if !ok || !strings.HasPrefix(header, "n,") || !strings.HasSuffix(rest, "\x01\x01") {
		return fail("malformed client message")
	}
	var token string
	for kv := range strings.SplitSeq(strings.TrimSuffix(rest, "\x01\x01"), "\x01") {
		if b, ok := strings.CutPrefix(kv, "auth="); ok {
			t, ok := strings.CutPrefix(b, "Bearer ")
			if !ok {
				return fail("auth is not a Bearer token")
			}
			token = strings.TrimSpace(t)
		}
	}
	if token == "" {
		return fail("no token")
	}
	sub, exp, err := s.v.validate(token)
	if err != nil {
		return fail("%v", err)
	}
	s.expiry = exp
	return nil, sub, nil
}

// sessionExpiry is when the session the exchange opened must end: the
// token's expiry.
func (s *oauthServer) sessionExpiry() time.Time { return s.expiry }

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// validate checks a compact-serialized JWT and returns its principal name
// and expiry.
func (v *oauthValidator) validate(token string) (string, time.Time, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", time.Time{}, errors.New("token is not a compact JWT")
	}
	var h jwtHeader
	if err := decodeJWTPart(parts[0], &h); err != nil {
		return "", time.Time{}, fmt.Errorf("token header: %w", err)
	}
	var claims map[string]any
	if err := decodeJWTPart(parts[1], &claims); err != nil {
		return "", time.Time{}, fmt.Errorf("token claims: %w", err)
	}
	if err := v.verifySignature(h, parts); err != nil {
		return "", time.Time{}, err
	}
	now := v.now()
	skew := v.cfg.ClockSkew
	exp, ok := numericClaim(claims, "exp")
	if !ok {
		return "", time.Time{}, errors.New("token has no exp")
	}
	if !now.Before(exp.Add(skew)) {
		return "", time.Time{}, fmt.Errorf("token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if nbf, ok := numericClaim(claims, "nbf"); ok && now.Add(skew).Before(nbf) {
		return "", time.Time{}, fmt.Errorf("token not valid before %s", nbf.UTC().Format(time.RFC3339))
	}
	if iat, ok := numericClaim(claims, "iat"); ok && now.Add(skew).Before(iat) {
		return "", time.Time{}, fmt.Errorf("token issued in the future, at %s", iat.UTC().Format(time.RFC3339))
	}
	if v.cfg.Issuer != "" && claims["iss"] != v.cfg.Issuer {
		return "", time.Time{}, fmt.Errorf("token issuer %v, want %q", claims["iss"], v.cfg.Issuer)
	}
	if len(v.cfg.Audience) > 0 && !slices.ContainsFunc(audiences(claims["aud"]), func(a string) bool { return slices.Contains(v.cfg.Audience, a) }) {
		return "", time.Time{}, fmt.Errorf("token audience %v is not one of %v", claims["aud"], v.cfg.Audience)
	}
	sub, _ := claims[v.cfg.SubClaim].(string)
	if strings.TrimSpace(sub) == "" {
		return "", time.Time{}, fmt.Errorf("token has no %q claim", v.cfg.SubClaim)
	}
	return sub, exp, nil
}

func (v *oauthValidator) verifySignature(h jwtHeader, parts []string) error {
	if h.Alg == "none" {
		if !v.cfg.Unsecured {
			return errors.New("unsigned token (alg none) refused")
		}
		if parts[2] != "" {
			return errors.New("unsigned token with a signature")
		}
		return nil
	}
	if v.cfg.JWKSFile == "" {
		return fmt.Errorf("signed token (alg %s) but no key set configured", h.Alg)
	}
	keys, err := v.keySet()
	if err != nil {
		return err
	}
	key, ok := keys[h.Kid]
	if !ok {
		return fmt.Errorf("no key %q in the key set", h.Kid)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("token signature: %w", err)
	}
	return verifyJWS(h.Alg, key, []byte(parts[0]+"."+parts[1]), sig)
}

// verifyJWS checks a JWS signature (RFC 7518): RS*, PS* and ES* with
// SHA-256/384/512.
func verifyJWS(alg string, key crypto.PublicKey, signed, sig []byte) error {
	var hash crypto.Hash
	switch alg[len(alg)-3:] {
	case "256":
		hash = crypto.SHA256
	case "384":
		hash = crypto.SHA384
	case "512":
		hash = crypto.SHA512
	default:
		return fmt.Errorf("unsupported token algorithm %q", alg)
	}
	hh := hash.New()
	hh.Write(signed)
	digest := hh.Sum(nil)
	bad := fmt.Errorf("token signature (%s) does not verify", alg)
	switch {
	case strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS"):
		pk, ok := key.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("key for %s is not an RSA key", alg)
		}
		var err error
		if alg[0] == 'R' {
			err = rsa.VerifyPKCS1v15(pk, hash, digest, sig)
		} else {
			err = rsa.VerifyPSS(pk, hash, digest, sig, nil)
		}
		if err != nil {
			return bad
		}
		return nil
	case strings.HasPrefix(alg, "ES"):
		pk, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("key for %s is not an EC key", alg)
		}
		n := (pk.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return bad
		}
		r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
		if !ecdsa.Verify(pk, digest, r, s) {
			return bad
		}
		return nil
	}
	return fmt.Errorf("unsupported token algorithm %q", alg)
}

func decodeJWTPart(part string, into any) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(part, "="))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// numericClaim reads a NumericDate claim (seconds since the epoch).
func numericClaim(claims map[string]any, name string) (time.Time, bool) {
	f, ok := claims[name].(float64)
	if !ok {
		return time.Time{}, false
	}
	sec, frac := int64(f), f-float64(int64(f))
	return time.Unix(sec, int64(frac*1e9)), true
}

// audiences reads "aud": a string or an array of strings.
func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// readJWKS reads a JSON Web Key Set of RSA and EC public keys.
func readJWKS(path string) (map[string]crypto.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("OAUTHBEARER key set: %w", err)
	}
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			N   string `json:"n"`
			E   string `json:"e"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("OAUTHBEARER key set %s: %w", path, err)
	}
	keys := map[string]crypto.PublicKey{}
	num := func(s string) (*big.Int, error) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("bad base64url number %q", s)
		}
		return new(big.Int).SetBytes(b), nil
	}
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var key crypto.PublicKey
		switch k.Kty {
		case "RSA":
			n, err := num(k.N)
			if err != nil {
				return nil, fmt.Errorf("OAUTHBEARER key set %s: key %d: %w", path, i, err)
			}
			e, err := num(k.E)
			if err != nil || !e.IsInt64() || e.Int64() < 3 {
				return nil, fmt.Errorf("OAUTHBEARER key set %s: key %d: bad exponent", path, i)
			}
			key = &rsa.PublicKey{N: n, E: int(e.Int64())}
		case "EC":
			var curve elliptic.Curve
			var ecdhCurve ecdh.Curve
			switch k.Crv {
			case "P-256":
				curve, ecdhCurve = elliptic.P256(), ecdh.P256()
			case "P-384":
				curve, ecdhCurve = elliptic.P384(), ecdh.P384()
			case "P-521":
				curve, ecdhCurve = elliptic.P521(), ecdh.P521()
			default:
				return nil, fmt.Errorf("OAUTHBEARER key set %s: key %d: unsupported curve %q", path, i, k.Crv)
			}
			x, err := num(k.X)
			if err != nil {
				return nil, fmt.Errorf("OAUTHBEARER key set %s: key %d: %w", path, i, err)
			}
			y, err := num(k.Y)
			if err != nil {
				return nil, fmt.Errorf("OAUTHBEARER key set %s: key %d: %w", path, i, err)
			}
			// crypto/ecdh checks that the point is on the curve.
			size := (curve.Params().BitSize + 7) / 8
			if len(x.Bytes()) > size || len(y.Bytes()) > size {
				return nil, fmt.Errorf("OAUTHBEARER key set %s: key %d: coordinates too long for %s", path, i, k.Crv)
			}
			point := append([]byte{4}, x.FillBytes(make([]byte, size))...)
			if _, err := ecdhCurve.NewPublicKey(append(point, y.FillBytes(make([]byte, size))...)); err != nil {
				return nil, fmt.Errorf("OAUTHBEARER key set %s: key %d: point not on %s", path, i, k.Crv)
			}
			key = &ecdsa.PublicKey{Curve: curve, X: x, Y: y}
		default:
			continue // a key type tokens here cannot use
		}
		keys[k.Kid] = key
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("OAUTHBEARER key set %s has no RSA or EC signing key", path)
	}
	return keys, nil
}
