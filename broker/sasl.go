package broker

import (
	"bufio"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// SASL mechanisms the broker serves (sasl.enabled.mechanisms).
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// mechanisms are the mechanisms the broker knows; the password ones are
// on by default, OAUTHBEARER only when named (it needs a key set).
var (
	mechanisms         = []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512, MechanismOAuthBearer}
	passwordMechanisms = []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512}
)

// SASLConfig is the broker's SASL settings, for SASL_PLAINTEXT and
// SASL_SSL listeners.
type SASLConfig struct {
	// Mechanisms are the mechanisms a client may choose
	// (sasl.enabled.mechanisms). Default all of PLAIN, SCRAM-SHA-256 and
	// SCRAM-SHA-512; OAUTHBEARER (oauthbearer.go) must be named, and
	// configured in OAuthBearer.
	Mechanisms []string
	// Users maps user names to passwords, for PLAIN and SCRAM alike (as
	// PLAIN's user_NAME="password" JAAS options). SCRAM credentials are
	// derived from them at start-up, salted with a random salt and
	// ScramIterations rounds; the SCRAM exchange never sees the password.
	// SCRAM users are also kept in the cluster's metadata, managed with
	// AlterUserScramCredentials (`runnel users`); a user there
	// authenticates with that credential, not the one derived here.
	Users map[string]string
	// UsersFile adds users from a file of NAME=PASSWORD lines (# starts a
	// comment), read at start-up.
	UsersFile string
	// ScramIterations is the SCRAM iteration count (Kafka's
	// iterations=). Default 4096, the minimum Kafka accepts.
	ScramIterations int
	// ConnectionsMaxReauth is connections.max.reauth.ms (KIP-368): a
	// client is told its session lasts this long and must authenticate
	// again before it ends; a request after the end closes the
	// connection. Default 0: sessions do not expire.
	ConnectionsMaxReauth time.Duration
	// AuthenticationTimeout bounds the time from the connection to the
	// end of a successful authentication; a client that stops in the
	// middle is disconnected. Runnel's own (Kafka relies on
	// connections.max.idle.ms). Default 10s.
	AuthenticationTimeout time.Duration
	// OAuthBearer validates the tokens of OAUTHBEARER clients.
	OAuthBearer OAuthBearerConfig
}

func (c *SASLConfig) ensureDefaults() {
	if c.Mechanisms == nil {
		c.Mechanisms = slices.Clone(passwordMechanisms)
	}
	c.OAuthBearer.ensureDefaults()
	if c.ScramIterations == 0 {
		c.ScramIterations = 4096
	}
	if c.AuthenticationTimeout == 0 {
		c.AuthenticationTimeout = 10 * time.Second
	}
}

func (c *SASLConfig) validate() []error {
	var errs []error
	if len(c.Mechanisms) == 0 {
		errs = append(errs, errors.New("a SASL listener needs at least one sasl.enabled.mechanisms"))
	}
	for _, m := range c.Mechanisms {
		if !slices.Contains(mechanisms, m) {
			errs = append(errs, fmt.Errorf("sasl mechanism %q: want one of %s", m, strings.Join(mechanisms, ", ")))
		}
	}
	if slices.Contains(c.Mechanisms, MechanismOAuthBearer) {
		errs = append(errs, c.OAuthBearer.validate()...)
	}
	if c.ScramIterations < 4096 {
		errs = append(errs, fmt.Errorf("SCRAM iterations %d must be at least 4096", c.ScramIterations))
	}
	if c.ConnectionsMaxReauth < 0 {
		errs = append(errs, fmt.Errorf("connections.max.reauth.ms %v is negative", c.ConnectionsMaxReauth))
	}
	if c.AuthenticationTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("sasl authentication timeout %v must be at least 1ms", c.AuthenticationTimeout))
	}
	return errs
}

// ReadUsersFile reads a file of NAME=PASSWORD lines, # comments and blank
// lines skipped, as SASLConfig.UsersFile.
func ReadUsersFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("broker: sasl users: %w", err)
	}
	defer f.Close()
	users := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, pass, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("broker: sasl users %s line %d: want NAME=PASSWORD", path, n)
		}
		users[name] = pass
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("broker: sasl users %s: %w", path, err)
	}
	return users, nil
}

// saslUsers holds what the broker checks passwords against: the password
// for PLAIN, and salted SCRAM credentials per mechanism.
type saslUsers struct {
	plain map[string]string
	scram map[string]map[string]scramCredential // mechanism -> user
	oauth *oauthValidator                       // nil unless OAUTHBEARER is on
}

// needsUsers reports whether the mechanisms enabled check passwords.
func (c *SASLConfig) needsUsers() bool {
	return slices.ContainsFunc(c.Mechanisms, func(m string) bool { return slices.Contains(passwordMechanisms, m) })
}

func newSASLUsers(c SASLConfig, now func() time.Time) (*saslUsers, error) {
	users := map[string]string{}
	if c.UsersFile != "" {
		fu, err := ReadUsersFile(c.UsersFile)
		if err != nil {
			return nil, err
		}
		for k, v := range fu {
			users[k] = v
		}
	}
	for k, v := range c.Users {
		users[k] = v
	}
	for name, pass := range users {
		if pass == "" {
			return nil, fmt.Errorf("broker: sasl user %q has an empty password", name)
		}
	}
	u := &saslUsers{plain: users, scram: map[string]map[string]scramCredential{}}
	if slices.Contains(c.Mechanisms, MechanismOAuthBearer) {
		u.oauth = newOAuthValidator(c.OAuthBearer, now)
	}
	for _, m := range []string{MechanismScramSHA256, MechanismScramSHA512} {
		if !slices.Contains(c.Mechanisms, m) {
			continue
		}
		creds := map[string]scramCredential{}
		for name, pass := range users {
			cred, err := newScramCredential(m, pass, c.ScramIterations)
			if err != nil {
				return nil, err
			}
			creds[name] = cred
		}
		u.scram[m] = creds
	}
	return u, nil
}

// saslServer is one mechanism's server side of an exchange: step takes the
// client's next message and returns the reply, and the authenticated user
// once done.
type saslServer interface {
	step(in []byte) (out []byte, user string, err error)
}

// expiringSession is a saslServer whose credential ends the session it
// opens at a time of its own (an OAUTHBEARER token's expiry).
type expiringSession interface {
	sessionExpiry() time.Time
}

// errSASLFailed is an authentication the client cannot pass: a wrong
// password, an unknown user, a malformed message.
var errSASLFailed = errors.New("authentication failed")

// server begins an exchange of mechanism. SCRAM users come from cl, the
// metadata (AlterUserScramCredentials), and then from the configured
// users: a user with a credential in the metadata authenticates with that
// one only.
func (u *saslUsers) server(mechanism string, cl *meta.Cluster) saslServer {
	switch mechanism {
	case MechanismPlain:
		return &plainServer{users: u.plain}
	case MechanismScramSHA256, MechanismScramSHA512:
		return &scramServer{mechanism: mechanism, lookup: func(user string) (scramCredential, bool) {
			if mc, ok := cl.ScramUsers[user][mechanism]; ok {
				return scramCredential{salt: mc.Salt, iterations: int(mc.Iterations), storedKey: mc.StoredKey, serverKey: mc.ServerKey}, true
			}
			cred, ok := u.scram[mechanism][user]
			return cred, ok
		}}
	case MechanismOAuthBearer:
		return &oauthServer{v: u.oauth}
	}
	return nil
}

// plainServer is SASL PLAIN (RFC 4616): one message,
// authzid NUL authcid NUL password.
type plainServer struct{ users map[string]string }

func (p *plainServer) step(in []byte) ([]byte, string, error) {
	parts := strings.Split(string(in), "\x00")
	if len(parts) != 3 {
		return nil, "", fmt.Errorf("%w: malformed PLAIN message", errSASLFailed)
	}
	authz, user, pass := parts[0], parts[1], parts[2]
	if authz != "" && authz != user {
		return nil, "", fmt.Errorf("%w: authorization id %q differs from user %q", errSASLFailed, authz, user)
	}
	want, ok := p.users[user]
	// Compare even for an unknown user, so timing says nothing of who
	// exists.
	eq := subtle.ConstantTimeCompare([]byte(want), []byte(pass)) == 1
	if !ok || !eq {
		return nil, "", fmt.Errorf("%w: invalid username or password", errSASLFailed)
	}
	return nil, user, nil
}
