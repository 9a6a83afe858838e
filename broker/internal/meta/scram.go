package meta

import (
	"context"
	"errors"
	"fmt"
	"maps"
)

// SCRAM credentials (RFC 5802) of the SASL users, kept here so they
// survive restarts and every broker of a cluster checks the same ones, as
// KRaft keeps them in its metadata log. A credential is what the broker
// derives from a salted password, never the password itself.

// SCRAM mechanisms a credential may be for.
const (
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// ErrUnknownScramMechanism: a credential for a mechanism other than
// ScramSHA256 and ScramSHA512.
var ErrUnknownScramMechanism = errors.New("meta: unknown SCRAM mechanism")

// ScramCredential is one user's credential for one mechanism.
type ScramCredential struct {
	Salt       []byte `json:"salt"`
	Iterations int32  `json:"iterations"`
	// StoredKey is H(ClientKey) and ServerKey HMAC(SaltedPassword,
	// "Server Key"): what the server side of an exchange checks a proof
	// against and signs with.
	StoredKey []byte `json:"storedKey"`
	ServerKey []byte `json:"serverKey"`
}

// ScramUpsertion sets User's credential for Mechanism, replacing any.
type ScramUpsertion struct {
	User       string          `json:"user"`
	Mechanism  string          `json:"mechanism"`
	Credential ScramCredential `json:"credential"`
}

// ScramDeletion removes User's credential for Mechanism; removing one
// that is not there changes nothing.
type ScramDeletion struct {
	User      string `json:"user"`
	Mechanism string `json:"mechanism"`
}

// ScramAlteration is one AlterUserScramCredentials, applied at once.
type ScramAlteration struct {
	Upsertions []ScramUpsertion `json:"upsertions,omitempty"`
	Deletions  []ScramDeletion  `json:"deletions,omitempty"`
}

const opAlterScram = "alter-scram"

func validScramMechanism(m string) bool { return m == ScramSHA256 || m == ScramSHA512 }

// applyScram applies an alteration: every change or none. The user map
// and each user's inner map are replaced, never edited, so views share
// them.
func (s *state) applyScram(a *ScramAlteration) error {
	if a == nil {
		return errors.New("meta: alter-scram without an alteration")
	}
	for _, u := range a.Upsertions {
		if u.User == "" || !validScramMechanism(u.Mechanism) {
			return fmt.Errorf("%w: %q for user %q", ErrUnknownScramMechanism, u.Mechanism, u.User)
		}
	}
	users := maps.Clone(s.ScramUsers)
	if users == nil {
		users = make(map[string]map[string]ScramCredential)
	}
	for _, d := range a.Deletions {
		creds := maps.Clone(users[d.User])
		delete(creds, d.Mechanism)
		if len(creds) == 0 {
			delete(users, d.User)
		} else {
			users[d.User] = creds
		}
	}
	for _, u := range a.Upsertions {
		creds := maps.Clone(users[u.User])
		if creds == nil {
			creds = make(map[string]ScramCredential)
		}
		creds[u.Mechanism] = u.Credential
		users[u.User] = creds
	}
	s.ScramUsers = users
	return nil
}

// AlterScramCredentials replicates an alteration of the SCRAM users. The
// caller validates it first (Kafka's rules: iterations, duplicates,
// deleting what exists); the state machine only refuses an unknown
// mechanism.
func (s *Store) AlterScramCredentials(ctx context.Context, a ScramAlteration) error {
	return s.propose(ctx, &command{Op: opAlterScram, Scram: &a})
}
