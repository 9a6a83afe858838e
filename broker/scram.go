package broker

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// SCRAM (RFC 5802) with SHA-256 and SHA-512 (RFC 7677), server side, as
// Kafka's SCRAM-SHA-256 and SCRAM-SHA-512: no channel binding, the
// authorization id empty or the user.
//
//	client-first  n,,n=USER,r=CNONCE
//	server-first  r=CNONCE+SNONCE,s=SALT,i=ITERATIONS
//	client-final  c=biws,r=CNONCE+SNONCE,p=PROOF
//	server-final  v=SERVER-SIGNATURE

// scramCredential is what the broker keeps of a password: the salt and
// the keys derived from it, never the password.
type scramCredential struct {
	salt       []byte
	iterations int
	storedKey  []byte // H(HMAC(SaltedPassword, "Client Key"))
	serverKey  []byte // HMAC(SaltedPassword, "Server Key")
}

func scramHash(mechanism string) func() hash.Hash {
	if mechanism == MechanismScramSHA512 {
		return sha512.New
	}
	return sha256.New
}

func newScramCredential(mechanism, password string, iterations int) (scramCredential, error) {
	salt := make([]byte, 32)
	rand.Read(salt)
	h := scramHash(mechanism)
	salted, err := pbkdf2.Key(h, password, salt, iterations, h().Size())
	if err != nil {
		return scramCredential{}, fmt.Errorf("broker: scram: %w", err)
	}
	return scramCredentialFromSalted(mechanism, salt, salted, iterations), nil
}

// scramCredentialFromSalted derives what the broker keeps from a salted
// password (Hi(password, salt, iterations)), as AlterUserScramCredentials
// carries it.
func scramCredentialFromSalted(mechanism string, salt, salted []byte, iterations int) scramCredential {
	h := scramHash(mechanism)
	stored := h()
	stored.Write(hmacOf(h, salted, "Client Key"))
	return scramCredential{salt: salt, iterations: iterations, storedKey: stored.Sum(nil), serverKey: hmacOf(h, salted, "Server Key")}
}

func hmacOf(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// scramServer runs one exchange: two steps.
type scramServer struct {
	mechanism string
	// lookup finds a user's credential for the mechanism.
	lookup func(user string) (scramCredential, bool)

	// Set by the first step.
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string
	user            string
	cred            scramCredential
}

func (s *scramServer) step(in []byte) ([]byte, string, error) {
	if s.serverFirst == "" {
		return s.first(string(in))
	}
	return s.final(string(in))
}

func (s *scramServer) first(msg string) ([]byte, string, error) {
	fail := func(why string) ([]byte, string, error) {
		return nil, "", fmt.Errorf("%w: %s: %s", errSASLFailed, s.mechanism, why)
	}
	// gs2-header: "n" or "y" (no channel binding), then the optional
	// authzid, then the bare message.
	parts := strings.SplitN(msg, ",", 3)
	if len(parts) != 3 {
		return fail("malformed client-first message")
	}
	if parts[0] != "n" && parts[0] != "y" {
		return fail("channel binding is not supported")
	}
	authz := ""
	if parts[1] != "" {
		a, ok := strings.CutPrefix(parts[1], "a=")
		if !ok {
			return fail("malformed authorization id")
		}
		authz = scramUnescape(a)
	}
	s.gs2Header = parts[0] + "," + parts[1] + ","
	s.clientFirstBare = parts[2]
	attrs := scramAttrs(parts[2])
	user, cnonce := scramUnescape(attrs["n"]), attrs["r"]
	if user == "" || cnonce == "" {
		return fail("client-first message without user or nonce")
	}
	if authz != "" && authz != user {
		return fail("authorization id differs from the user")
	}
	cred, ok := s.lookup(user)
	if !ok {
		return fail("invalid username or password")
	}
	snonce := make([]byte, 24)
	rand.Read(snonce)
	s.user, s.cred = user, cred
	s.nonce = cnonce + base64.RawStdEncoding.EncodeToString(snonce)
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(cred.salt) + ",i=" + strconv.Itoa(cred.iterations)
	return []byte(s.serverFirst), "", nil
}

func (s *scramServer) final(msg string) ([]byte, string, error) {
	fail := func(why string) ([]byte, string, error) {
		return nil, "", fmt.Errorf("%w: %s: %s", errSASLFailed, s.mechanism, why)
	}
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return fail("client-final message without proof")
	}
	withoutProof := msg[:i]
	attrs := scramAttrs(withoutProof)
	if attrs["c"] != base64.StdEncoding.EncodeToString([]byte(s.gs2Header)) {
		return fail("channel binding differs from the client-first message")
	}
	// The client echoes the nonce of the server-first message. librdkafka
	// puts its own nonce before it a second time; Kafka accepts a nonce
	// that ends with the server's, and so does Runnel: the server's fresh
	// part is still required, and the proof covers the message as sent.
	if !strings.HasSuffix(attrs["r"], s.nonce) {
		return fail("nonce differs")
	}
	proof, err := base64.StdEncoding.DecodeString(msg[i+3:])
	h := scramHash(s.mechanism)
	if err != nil || len(proof) != h().Size() {
		return fail("malformed proof")
	}
	authMessage := s.clientFirstBare + "," + s.serverFirst + "," + withoutProof
	clientSig := hmacOf(h, s.cred.storedKey, authMessage)
	clientKey := make([]byte, len(proof))
	for j := range proof {
		clientKey[j] = proof[j] ^ clientSig[j]
	}
	sum := h()
	sum.Write(clientKey)
	if subtle.ConstantTimeCompare(sum.Sum(nil), s.cred.storedKey) != 1 {
		return fail("invalid username or password")
	}
	serverSig := hmacOf(h, s.cred.serverKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), s.user, nil
}

// scramAttrs splits "k=v,k=v" into a map; the first of a repeated key wins.
func scramAttrs(s string) map[string]string {
	m := map[string]string{}
	for kv := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if _, dup := m[k]; !dup {
			m[k] = v
		}
	}
	return m
}

// scramUnescape undoes the saslname escapes: "=2C" is ",", "=3D" is "=".
func scramUnescape(s string) string {
	return strings.NewReplacer("=2C", ",", "=3D", "=").Replace(s)
}
